// Package backup is the client's backup pipeline:
//
//	walk ─► reuse? ─► hash workers ─► ordered collector ─► manifest spool
//	                                        │
//	                                        └─► missing batcher ─► upload workers
//
// The walk streams the folder in walk order and merge-joins it with the
// previous manifest of the same tags (both are in walk order, so neither is
// held in memory): a file whose type, size and mtime are unchanged reuses
// its blocks unread. Other files are hashed by GOMAXPROCS workers into
// fixed-size blocks named by their CID. An ordered collector writes the
// entries to a spool file in walk order and hands new CIDs to a batcher that
// asks the server which it lacks; upload workers then read those ranges
// again and stream them through LZ4 to the server, checking that the bytes
// still hash to the same CID. Finally the spooled manifest is committed with
// an idempotency key; if the server reports missing blocks, they are found
// in the spool, uploaded, and the commit is retried.
//
// Memory is bounded by the channel capacities and the worker count, never by
// the number or size of files: no block is ever held whole.
package backup
