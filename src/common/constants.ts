/**
 * Every limit and period of the protocol, in one place with its reason.
 * Durations are in milliseconds, sizes in bytes.
 */

const SECOND = 1000
const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

/**
 * Wire protocol version carried in every gossip message. Raised whenever
 * what a validator accepts changes: 2 lets a job's frame size be unknown
 * (0x0) and adds the scripts requirement.
 */
export const PROTOCOL_VERSION = 2

/** The one gossipsub topic every peer of the swarm joins. */
export const JOBS_TOPIC = 'blendnet/jobs/1'

export const CLAIM_PROTOCOL = '/blendnet/claim/1.0.0'
export const FETCH_PROTOCOL = '/blendnet/fetch/1.0.0'
export const RESULT_PROTOCOL = '/blendnet/result/1.0.0'
export const CHUNK_LOG_PROTOCOL = '/blendnet/chunk-log/1.0.0'

/** Our own DHT, so that the swarm never joins the public IPFS one. */
export const KAD_PROTOCOL = '/blendnet/kad/1.0.0'

/**
 * How long a granted claim lasts without renewal. A worker that dies costs
 * at most this long before its chunk is offered again. Brenda uses 120 s
 * renewed every 30 s; our chunks are short, so we keep it tighter.
 */
export const LEASE_MS = 30 * SECOND

/** Coordinators re-announce their jobs so late joiners learn of them. */
export const ANNOUNCE_INTERVAL_MS = 2 * SECOND

/** Workers say they are alive this often. */
export const PRESENCE_INTERVAL_MS = 5 * SECOND

/** A worker not heard from for this long is no longer counted as present. */
export const PRESENCE_TIMEOUT_MS = 3 * PRESENCE_INTERVAL_MS

/**
 * A job not announced for this long is forgotten by workers: its
 * coordinator is gone (killed, or its machine left the network).
 */
export const JOB_STALE_MS = 15 * ANNOUNCE_INTERVAL_MS

/** A claim or renewal not answered in this long has failed. */
export const CLAIM_TIMEOUT_MS = 5 * SECOND

/**
 * A coordinator that did not answer a claim is left alone this long, so
 * that one stalled (or hostile) coordinator cannot hold up the others.
 */
export const UNREACHABLE_BACKOFF_MS = 30 * SECOND

/**
 * A frame upload that breaks is retried after 0.5 s, doubling up to 5 s,
 * while the chunk's lease holds: long enough to ride out a reconnect.
 */
export const UPLOAD_RETRY_FIRST_MS = 500
export const UPLOAD_RETRY_MAX_MS = 5 * SECOND

/** Jobs a worker keeps track of, per coordinator and in all: bounds the
 * memory a peer can make it spend by announcing jobs. */
export const MAX_JOBS_PER_COORDINATOR = 8
export const MAX_KNOWN_JOBS = 256

/** Open chunks listed in one announcement; keeps gossip messages small. */
export const MAX_ANNOUNCED_OFFERS = 32

/**
 * Gossip messages are kilobytes; gossipsub silently drops ~4 MiB ones and
 * anything large is hostile.
 */
export const MAX_GOSSIP_MESSAGE_BYTES = 64 * KiB

/** Framed control messages on streams (claims, replies, headers). */
export const MAX_CONTROL_MESSAGE_BYTES = 64 * KiB

/** Write size for file transfers: 64-256 KiB is libp2p's sweet spot. */
export const TRANSFER_CHUNK_BYTES = 256 * KiB

/** The largest frame a coordinator accepts (a 16K multilayer EXR fits). */
export const MAX_FRAME_BYTES = 4 * GiB
/**
 * A chunk's Blender log kept next to the output: its last 4 MiB, which
 * holds the error and the progress lines before it.
 */
export const MAX_CHUNK_LOG_BYTES = 4 * MiB

/** Each wait on a stream gets its own deadline: libp2p enforces none. */
export const STREAM_IDLE_TIMEOUT_MS = 30 * SECOND

/** A claim signed longer ago than this (or this far ahead) is refused. */
export const CLAIM_MAX_AGE_MS = 5 * 60 * SECOND

/**
 * A chunk fails for good once this many different workers failed it, or
 * once every worker present has failed it.
 */
export const MAX_CHUNK_FAILURES = 3

/**
 * A worker that failed this many chunks of a job takes no more of it: a
 * broken machine (bad driver, full disk) must not chew through a job.
 */
export const MAX_WORKER_FAILURES = 3

/** Default frames per chunk: one Blender start-up is shared by them. */
export const DEFAULT_CHUNK_SIZE = 4

/** How long `submit` waits for a first worker before giving up. */
export const DEFAULT_WORKER_WAIT_MS = 10 * 60 * SECOND
