/**
 * The name Ollama resolves a model reference to: a reference without a tag means `:latest`, so
 * `llama3.2` and `llama3.2:latest` are one model. Case is kept (Ollama matches names
 * case-insensitively only when pulling).
 */
export function canonicalModel(name: string): string {
  const slash = name.lastIndexOf('/')
  return name.indexOf(':', slash + 1) === -1 ? `${name}:latest` : name
}
