/**
 * The questions a bench run asks: one per line of `--prompts <file>`, or a built-in set of
 * questions such as users put to a documentation assistant, with a few passages the `rag`
 * workload pastes in as retrieved context.
 */
import { readFile } from 'node:fs/promises'
import { BenchUsageError } from './bench-options.js'

export const BUILT_IN_QUESTIONS: readonly string[] = [
  'How do I reset my password?',
  'What is the refund policy for annual plans?',
  'How can I export my data to CSV?',
  'Which regions is the service available in?',
  'How do I add a team member to my workspace?',
  'What happens when my trial ends?',
  'How do I enable two-factor authentication?',
  'Can I change the billing currency?',
  'Where do I find my invoices?',
  'How do I connect the API with a personal token?',
  'What are the rate limits of the public API?',
  'How do I delete my account permanently?',
  'Why was my payment declined?',
  'How do I set up single sign-on with SAML?',
  'Can two people edit the same document at once?',
  'How long are backups kept?',
  'How do I restore a deleted project?',
  'What file types can I upload?',
  'What is the largest file I can upload?',
  'How do I change the owner of a workspace?',
  'Is my data encrypted at rest?',
  'How do I report a security issue?',
  'How do I integrate with Slack?',
  'Can I use a custom domain?',
  'How do webhooks retry failed deliveries?',
  'How do I downgrade my plan?',
  'What does the audit log record?',
  'How do I invite guests with read-only access?',
  'Why do I not receive notification emails?',
  'How do I change the language of the interface?',
  'Is there a mobile app?',
  'How do I archive old projects?',
  'What is the uptime commitment?',
  'How do I migrate from the legacy API?',
  'Can I pay by bank transfer?',
  'How do I rotate API keys?',
  'What browsers are supported?',
  'How do I merge two accounts?',
  'How are seats counted on the team plan?',
  'Where is my data stored?',
]

/** Passages standing in for a vector store's top results. */
export const CONTEXT_PASSAGES: readonly string[] = [
  'Passwords can be reset from the sign-in page; a link valid for one hour is sent by email.',
  'Annual plans are refunded pro rata within 30 days of purchase; monthly plans are not refunded.',
  'Exports are available under Settings > Data as CSV or JSON, for the whole workspace or one project.',
  'Workspace owners invite members from Settings > Team; guests get read-only access by default.',
  'Two-factor authentication supports authenticator apps and hardware keys; SMS is not offered.',
  'Invoices are listed under Billing > History and are emailed to the billing contact each month.',
  'The public API allows 600 requests per minute per token; bursts above that answer 429.',
  'Backups are taken every six hours and kept for 35 days; deleted projects can be restored for 30 days.',
  'Uploads are limited to 2 GB per file; every file type is accepted, executables are scanned.',
  'Data is encrypted at rest with AES-256 and in transit with TLS 1.2 or later, in the chosen region.',
  'Webhooks are retried with exponential back-off for up to 24 hours after the first failure.',
  'Single sign-on supports SAML 2.0 and OpenID Connect on the enterprise plan.',
]

/** Reads one prompt per non-blank line; a missing or empty file is a usage error. */
export async function loadPrompts(file: string | undefined): Promise<readonly string[]> {
  if (file === undefined) return BUILT_IN_QUESTIONS
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new BenchUsageError(`--prompts cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  const prompts = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '')
  if (prompts.length === 0) throw new BenchUsageError(`--prompts ${file} has no prompts (one per line)`)
  return prompts
}
