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
/** Worker → coordinator: Blender's progress on the frame it renders. */
export const PROGRESS_PROTOCOL = '/blendnet/progress/1.0.0'

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

/**
 * A worker reports Blender's progress (`Sample 12/64`) at most this often
 * per chunk: live enough for a progress display, one small stream a
 * second, far below the coordinator's per-peer rate limit.
 */
export const PROGRESS_INTERVAL_MS = 1 * SECOND

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

/** A worker's --allow-coordinator list is told to coordinators up to this
 * long; a longer one is not told (its coordinators wait as before). */
export const MAX_TOLD_COORDINATORS = 64

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

/**
 * Without --chunk-size, chunks follow each worker's speed: a grant takes
 * about this long to render (--chunk-time), and never more frames than
 * the planned chunk, ADAPTIVE_MAX_CHUNK.
 */
export const DEFAULT_CHUNK_TARGET_MS = 60 * SECOND
/** A claim for no chunk in particular: whatever is open, or a copy. */
export const ANY_CHUNK = 0xffff_ffff
export const ADAPTIVE_MAX_CHUNK = 100

/** How long `submit` waits for a first worker before giving up. */
export const DEFAULT_WORKER_WAIT_MS = 10 * 60 * SECOND

// Shared transfers of job files (src/net/pieces.ts, docs/protocol.md).

/** Workers and the coordinator serve pieces of job files on this. */
export const PIECES_PROTOCOL = '/blendnet/pieces/1.0.0'

/**
 * Job files are verified and shared in pieces of this size: a 500 MB
 * scene is 477 pieces (16 KB of hashes in the manifest), and a broken
 * connection loses at most the piece it was carrying.
 */
export const PIECE_BYTES = 1 * MiB

/**
 * Consecutive pieces asked for in one request (one stream): 4 MiB spans
 * keep a worker's streams per peer far under the rate limit.
 */
export const SPAN_PIECES = 4

/**
 * Span requests one file's fetch keeps in flight: in all, to one peer,
 * and to the coordinator, whose upload is what sharing saves.
 */
export const SPANS_IN_FLIGHT = 4
export const SPANS_PER_PEER = 2
export const SPANS_TO_COORDINATOR = 1

/**
 * Files smaller than this are fetched whole from the coordinator: sharing
 * one costs more round trips (tracker, peers' piece lists) than it saves.
 */
export const SHARED_FETCH_MIN_BYTES = SPAN_PIECES * PIECE_BYTES

/**
 * Peers one file's fetch asks at most: enough to spread the load, few
 * enough that keeping their piece lists fresh stays cheap in a big swarm.
 */
export const MAX_PEER_SOURCES = 8

/** A peer's list of held pieces is asked again after this long. */
export const HAVE_REFRESH_MS = 250

/** A fetching worker asks the coordinator who else fetches the file this often. */
export const TRACKER_REFRESH_MS = 1 * SECOND

/** Peers named in one reply of the coordinator's tracker. */
export const MAX_PEERS_PER_REPLY = 16

/**
 * An idle worker waits this long for pieces that other workers are
 * fetching before it asks the coordinator for them too.
 */
export const WAIT_FOR_PEERS_MS = 2 * SECOND

/**
 * A span request that receives nothing for this long is given up and its
 * pieces asked elsewhere: other peers usually have them, so waiting the
 * full STREAM_IDLE_TIMEOUT_MS on one stalled stream would hold up the file.
 */
export const PIECE_IDLE_MS = 5 * SECOND

/** A file fetch that verifies no piece for this long has failed. */
export const PIECE_STALL_MS = 30 * SECOND
