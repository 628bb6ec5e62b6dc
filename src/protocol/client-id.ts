/**
 * The clientId rule (docs/protocol.md, `hello`): what a client may call
 * itself. The box checks it at the edge; the library and the CLI check it
 * before sending. Portable.
 */
export const CLIENT_ID_MAX_LENGTH = 64;
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9._:-]+$/;
export const CLIENT_ID_RULE = 'letters, digits, ".", "_", ":" or "-" only';

/** Why `id` is not a valid clientId, or null when it is. */
export function clientIdProblem(id: string): string | null {
  if (id.length < 1 || id.length > CLIENT_ID_MAX_LENGTH) return `clientId ${JSON.stringify(id)} is ${id.length} characters; allowed: 1-${CLIENT_ID_MAX_LENGTH}`;
  if (!CLIENT_ID_PATTERN.test(id)) return `clientId ${JSON.stringify(id)}: ${CLIENT_ID_RULE}`;
  return null;
}
