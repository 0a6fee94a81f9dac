// Package transport holds Comet's wire format and the seam between a
// session and the transports that carry it.
//
// It defines the frames of PROTOCOL.md and their codec (AppendFrame,
// DecodeFrame, DecodeBatch), the close codes and CloseError, the negotiate
// and attach parameter types shared by server and client, and Downstream:
// the one interface a transport implements for the session layer. It has
// no state; every function is safe for concurrent use, while a Batch
// belongs to one goroutine at a time.
package transport
