package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted samples
// by the nearest-rank method: the smallest sample with at least p% of the
// samples at or below it. It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// latencies is a set of latency samples.
type latencies []time.Duration

// sorted returns a sorted copy.
func (l latencies) sorted() latencies {
	s := slices.Clone(l)
	slices.Sort(s)
	return s
}

// ms returns the p-th percentile of sorted samples in milliseconds, NaN
// when there are too few samples for it to mean anything: at least
// 10/(100-p) samples, so that p99.9 needs 10,000.
func (l latencies) ms(p float64) float64 {
	if len(l) == 0 || p < 100 && float64(len(l)) < 10/(100-p) {
		return math.NaN()
	}
	return float64(percentile(l, p)) / float64(time.Millisecond)
}

// median returns the median of xs (NaN for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
