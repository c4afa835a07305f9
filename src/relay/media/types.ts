/**
 * The media library's records, limits and errors: what the relay keeps of the results it
 * delivers (`library.ts`), who may fetch each (`visibility`), and for how long.
 */

/** Who may fetch a stored result, and where it is listed; see docs/media.md. */
export const VISIBILITIES = ["PUBLIC", "UNLISTED", "PRIVATE", "SECRET"] as const;
export type Visibility = (typeof VISIBILITIES)[number];

/** What kind of result an item is, from the endpoint that made it. */
export type MediaKind = "image" | "audio" | "music" | "video" | "mesh";

/** One stored result. `token` is the unguessable part of its URL; `id` names it to its owner. */
export interface MediaItem {
  id: string;
  token: string;
  member: string;
  created: number;
  model: string;
  kind: MediaKind;
  contentType: string;
  bytes: number;
  visibility: Visibility;
  collection: string | null;
  /** Pinned items are never removed by age. */
  pinned: boolean;
}

/** The operator's bounds on the library (flags of `club-provider relay`). */
export interface MediaLimits {
  /** Items older than this are removed, oldest first, unless pinned (default 30 days; 0 never). */
  maxAgeMs: number;
  /** Bytes one member may keep; past it new stored results are refused (default 1 GiB). */
  maxBytesPerMember: number;
  /** How long a SECRET result's one fetch stays possible (default 5 minutes). */
  secretTtlMs: number;
  /** Largest JSON answer of an image call the relay reads to store its images (default 64 MiB). */
  maxImageAnswerBytes: number;
  /** Largest voice sample upload (default 10 MiB). */
  voiceMaxBytes: number;
  /** Longest voice sample, read from its header (default 30 s; Dia clones best from 5-10 s). */
  voiceMaxSeconds: number;
  /** Voice samples one member may keep (default 100). */
  voiceMaxPerMember: number;
}

export const DEFAULT_MEDIA_LIMITS: MediaLimits = {
  maxAgeMs: 30 * 24 * 3_600_000,
  maxBytesPerMember: 1024 * 1024 * 1024,
  secretTtlMs: 5 * 60_000,
  maxImageAnswerBytes: 64 * 1024 * 1024,
  voiceMaxBytes: 10 * 1024 * 1024,
  voiceMaxSeconds: 30,
  voiceMaxPerMember: 100,
};
