// Package logid shortens session ids for logs, which never hold an id
// whole: an id is not a credential, but a log is read by more people than
// a URL is.
package logid

// Short returns the first 8 characters of id.
func Short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
