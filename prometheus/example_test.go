package prometheus_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	cometprom "github.com/seed-544bbf9f/comet/prometheus"
)

// Register a handler's collector on a registry, run one session, and read
// some of its metrics as a scrape would. A server would serve the registry
// with promhttp.HandlerFor.
func Example() {
	s, stop := newServer(nil)
	defer stop()
	reg := prometheus.NewRegistry()
	reg.MustRegister(cometprom.NewCollector(s.h, nil))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.echoOnce(ctx, "websocket"); err != nil {
		fmt.Println(err)
		return
	}

	families, err := reg.Gather()
	if err != nil {
		fmt.Println(err)
		return
	}
	var text bytes.Buffer
	for _, f := range families {
		expfmt.MetricFamilyToText(&text, f)
	}
	for line := range strings.Lines(text.String()) {
		if strings.HasPrefix(line, "comet_sessions_opened_total") ||
			strings.HasPrefix(line, "comet_sessions_closed_total") ||
			strings.HasPrefix(line, "comet_attach_seconds_count") ||
			strings.Contains(line, `transport="websocket"`) && strings.HasPrefix(line, "comet_messages_total") {
			fmt.Print(line)
		}
	}
	// Output:
	// comet_attach_seconds_count 1
	// comet_messages_total{direction="in",transport="websocket"} 1
	// comet_messages_total{direction="out",transport="websocket"} 1
	// comet_sessions_closed_total{code="1000"} 1
	// comet_sessions_opened_total 1
}
