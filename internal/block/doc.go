// Package block names and encodes blocks: a block is a byte range of one
// file, at most MaxSize long. Its identity is an IPFS CIDv1 (codec raw,
// multihash sha2-256) over the uncompressed bytes, and it travels and rests
// in its wire form, an LZ4 frame.
//
// Hashing and encoding are streams: neither the client nor the server ever
// holds a whole block in memory to name, compress or verify it.
package block
