// Package transport holds Comet's wire format and the seam between the
// session engine and the transports that carry it.
//
// It defines the frames of PROTOCOL.md and their codec (AppendFrame,
// DecodeFrame, DecodeBatch) and of raw binary WebSocket messages
// (AppendRawHeader, DecodeRaw, Batch.WSMessages), the close codes and CloseError, the negotiate
// and attach parameter types shared by server and client, the JSON error
// body (WriteError), and the seam: an Adapter serves one transport, given
// an Attachment per attach request (implemented by package session), and
// writes to the client through the Downstream it hands the attachment.
// Applications use the shared names through package comet.
//
// It has no state; every function is safe for concurrent use, while a
// Batch belongs to one goroutine at a time.
package transport
