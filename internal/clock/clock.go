// Package clock reads the time for the paths every message takes, at
// half the cost of time.Now.
//
// time.Now reads two clocks, the wall clock and the monotonic one; on a
// virtual machine each read can cost tens of nanoseconds, and a round
// trip on a session took five. The times these paths keep (when the peer
// was last heard, when a write began) are only compared with and
// subtracted from other times, which use the monotonic reading alone.
package clock

import "time"

// start is the process's start, as Now counts from it.
var start = time.Now()

// Now returns the current time, as time.Now does, from one read of the
// monotonic clock. Its monotonic reading is time.Now's; its wall clock
// reading is the process start's plus the monotonic time elapsed, which
// drifts from the system's wall clock when that is stepped. Use it for
// times that are compared, subtracted or turned into deadlines, not for
// times that are shown. In a testing/synctest bubble it follows the
// bubble's fake clock, as time.Now does.
func Now() time.Time { return start.Add(time.Since(start)) }
