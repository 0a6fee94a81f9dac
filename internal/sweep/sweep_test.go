package sweep

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seed-544bbf9f/comet/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// item waits from the epoch its mark recorded; checks counts the checks.
type item struct {
	mu     sync.Mutex
	mark   Mark
	fired  time.Duration // when the check found it over, since the start
	checks int
}

// state returns when it was found over and how often it was checked.
func (it *item) state() (time.Duration, int) {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.fired, it.checks
}

// wait starts its wait on l (Wait), under its lock.
func (it *item) wait(l *List[*item]) {
	it.mu.Lock()
	defer it.mu.Unlock()
	l.Wait(&it.mark, it)
}

// listed returns how many items l holds.
func (l *List[T]) listed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items)
}

// TestSweepWaitsAWholePeriod: an item is found over after at least one
// whole period of waiting and at most two; one that starts waiting again
// is not, and is listed once; the timer stops once nothing is listed,
// and starts again; an item let go is listed again by its next wait.
func TestSweepWaitsAWholePeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const period = 50 * time.Millisecond
		start := time.Now()
		var l *List[*item]
		l = New(period, func(it *item, epoch uint64) bool {
			it.mu.Lock()
			defer it.mu.Unlock()
			it.checks++
			if !it.mark.Over(epoch) {
				return true
			}
			it.fired = time.Since(start)
			it.mark.Unlist()
			return false
		})
		a := &item{}
		a.wait(l)
		time.Sleep(10 * time.Millisecond)
		b := &item{}
		b.wait(l)
		// b starts its wait again twice, well within each period.
		for range 2 {
			time.Sleep(40 * time.Millisecond)
			b.wait(l)
		}
		if n := l.listed(); n != 2 {
			t.Errorf("%d items listed, want 2: a wait again lists an item once", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		aFired, aChecks := a.state()
		bFired, bChecks := b.state()
		if aFired < period || aFired > 2*period {
			t.Errorf("a found over after %v, want between %v and %v", aFired, period, 2*period)
		}
		restarted := 10*time.Millisecond + 80*time.Millisecond
		if bFired < restarted+period || bFired > restarted+2*period {
			t.Errorf("b found over after %v, want between %v and %v", bFired, restarted+period, restarted+2*period)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		_, aNow := a.state()
		_, bNow := b.state()
		if n := aNow + bNow - aChecks - bChecks; n != 0 {
			t.Errorf("%d more checks with nothing listed: the timer should have stopped", n)
		}
		c := &item{}
		c.wait(l)
		time.Sleep(3 * period)
		synctest.Wait()
		if fired, _ := c.state(); fired == 0 {
			t.Error("an item listed after the timer stopped was never checked")
		}
		// a was let go: its next wait lists it again, and it is found over.
		a.mu.Lock()
		a.fired = 0
		a.mu.Unlock()
		a.wait(l)
		time.Sleep(3 * period)
		synctest.Wait()
		if fired, _ := a.state(); fired == 0 {
			t.Error("an item waiting again after a check let it go was never found over")
		}
	})
}
