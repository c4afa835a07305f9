/**
 * The request target, parsed without throwing: `GET //[` or a stray `%` must be a 400, never an
 * exception in a listener (the WebSocket upgrade has no handler that would catch it).
 */

/** The target as a URL against a fixed origin, or null when it is not an origin-form path. */
export function parseTarget(raw: string | undefined): URL | null {
  if (!raw?.startsWith("/") || raw.length > 8192) return null;
  try {
    // Prefixing the origin keeps `//host/...` a path, not a network-path reference.
    return new URL(`http://relay${raw}`);
  } catch {
    return null;
  }
}

/** `decodeURIComponent` that answers null for malformed escapes (`%E0%A4%A`). */
export function decodePart(part: string): string | null {
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
}
