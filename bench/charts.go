package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// latencySeries is one latency distribution to draw.
type latencySeries struct {
	name string
	lat  latencies // sorted
}

// barPair is one workload's Comet and raw values.
type barPair struct {
	name       string
	comet, raw float64
}

// plotData is what the charts draw, gathered as the metrics run.
type plotData struct {
	latency    []latencySeries // metrics 1 and 2: pairs, Comet first
	fanout     []latencySeries
	throughput []barPair
	memory     []barPair
	storm      []barPair
	fallback   []barPair
	pushStorm  []latencySeries // metric 8: Comet, then raw
	soak       []soakSeries    // metric 9
}

// soakSeries is one soaked server's samples.
type soakSeries struct {
	name    string
	samples []soakSample
}

var (
	cometColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	rawColor   = color.RGBA{R: 0xbb, G: 0xbb, B: 0xbb, A: 0xff}
	palette    = []color.Color{cometColor, color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff},
		color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, color.RGBA{R: 0x44, G: 0x44, B: 0x44, A: 0xff}}
)

// write draws every chart that has data into dir.
func (d *plotData) write(dir string) error {
	type job struct {
		file string
		draw func(string) error
		ok   bool
	}
	jobs := []job{
		{"latency.png", d.latencyChart, len(d.latency) > 0},
		{"throughput.png", d.throughputChart, len(d.throughput) > 0},
		{"memory.png", func(f string) error {
			return barChart(f, "Idle memory per session (heap + stacks)", "KiB per session", d.memory, "Comet", "raw")
		}, len(d.memory) > 0},
		{"storm.png", func(f string) error {
			return barChart(f, "Connect storm: time to establish every session", "seconds", d.storm, "Comet", "raw")
		}, len(d.storm) > 0},
		{"fanout-latency.png", func(f string) error {
			return percentileChart(f, "Fan-out: publish→receive latency", d.fanout)
		}, len(d.fanout) > 0},
		{"push-storm-latency.png", func(f string) error {
			return percentileChart(f, "Push storm: interactive echo round trip", d.pushStorm)
		}, len(d.pushStorm) > 0},
		{"soak.png", d.soakChart, len(d.soak) > 0},
		{"fallback.png", func(f string) error {
			return barChart(f, "Go client: time to first message, median", "ms", d.fallback, "WebSocket fault", "WebSocket working")
		}, len(d.fallback) > 0},
	}
	for _, j := range jobs {
		if !j.ok {
			continue
		}
		if err := j.draw(filepath.Join(dir, j.file)); err != nil {
			return fmt.Errorf("chart %s: %w", j.file, err)
		}
	}
	return nil
}

// latencyChart draws the echo latency distributions of metrics 1 and 2,
// one panel per transport.
func (d *plotData) latencyChart(file string) error {
	var plots []*plot.Plot
	for i := 0; i+1 < len(d.latency); i += 2 {
		p, err := percentilePlot(d.latency[i].name[:len(d.latency[i].name)-len(": Comet")]+": echo round trip, 1 session",
			d.latency[i:i+2])
		if err != nil {
			return err
		}
		plots = append(plots, p)
	}
	return saveTiles(file, [][]*plot.Plot{plots}, vg.Length(len(plots))*6*vg.Inch, 4.5*vg.Inch)
}

// percentileChart draws latency distributions on one panel.
func percentileChart(file, title string, series []latencySeries) error {
	p, err := percentilePlot(title, series)
	if err != nil {
		return err
	}
	return p.Save(7*vg.Inch, 4.5*vg.Inch, file)
}

// percentilePlot plots latency (log scale) against percentile, on an axis
// of "nines" so that the tail up to p99.9 gets as much room as the body.
func percentilePlot(title string, series []latencySeries) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.X.Tick.Marker = plot.ConstantTicks{{Value: 0, Label: "0"}, {Value: math.Log10(2), Label: "50"},
		{Value: 1, Label: "90"}, {Value: 2, Label: "99"}, {Value: 3, Label: "99.9"}}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	for i, s := range series {
		n := len(s.lat)
		if n == 0 {
			continue
		}
		// At most 400 points, evenly spaced in nines, up to p99.9 or as
		// far as the samples reach.
		top := math.Min(3, math.Log10(float64(n)))
		var pts plotter.XYs
		for k := 0; k <= 400; k++ {
			x := top * float64(k) / 400
			q := 1 - math.Pow(10, -x)
			v := float64(percentile(s.lat, math.Max(q*100, 1e-9))) / 1e6
			if v > 0 {
				pts = append(pts, plotter.XY{X: x, Y: v})
			}
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(2)
		if i%2 == 1 {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	return p, nil
}

// throughputChart draws one panel per workload, each on its own scale,
// since the rates differ by orders of magnitude.
func (d *plotData) throughputChart(file string) error {
	const cols = 4
	var rows [][]*plot.Plot
	for i, b := range d.throughput {
		p, err := pairPlot(b)
		if err != nil {
			return err
		}
		if i%cols == 0 {
			rows = append(rows, nil)
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], p)
	}
	for len(rows[len(rows)-1]) < cols {
		rows[len(rows)-1] = append(rows[len(rows)-1], nil)
	}
	return saveTiles(file, rows, cols*3*vg.Inch, vg.Length(len(rows))*3*vg.Inch)
}

// pairPlot is a two-bar panel: Comet and raw, per second.
func pairPlot(b barPair) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = b.name
	p.Y.Label.Text = "per second"
	p.Y.Min = 0
	p.Y.Tick.Marker = readableTicks{}
	vals := plotter.Values{nz(b.comet), 0}
	bars, err := plotter.NewBarChart(vals, vg.Points(40))
	if err != nil {
		return nil, err
	}
	bars.Color = cometColor
	bars.LineStyle.Width = 0
	raw, err := plotter.NewBarChart(plotter.Values{0, nz(b.raw)}, vg.Points(40))
	if err != nil {
		return nil, err
	}
	raw.Color = rawColor
	raw.LineStyle.Width = 0
	p.Add(bars, raw)
	p.NominalX("Comet", "raw")
	return p, nil
}

// barChart draws grouped bars, Comet beside raw, for each pair.
func barChart(file, title, unit string, pairs []barPair, cometName, rawName string) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = unit
	p.Legend.Top = true
	w := vg.Points(28)
	var cv, rv plotter.Values
	var names []string
	for _, b := range pairs {
		cv = append(cv, nz(b.comet))
		rv = append(rv, nz(b.raw))
		names = append(names, b.name)
	}
	cb, err := plotter.NewBarChart(cv, w)
	if err != nil {
		return err
	}
	cb.Color, cb.LineStyle.Width, cb.Offset = cometColor, 0, -w/2
	rb, err := plotter.NewBarChart(rv, w)
	if err != nil {
		return err
	}
	rb.Color, rb.LineStyle.Width, rb.Offset = rawColor, 0, w/2
	top := 0.0
	for _, v := range append(cv, rv...) {
		top = math.Max(top, v)
	}
	p.Y.Min, p.Y.Max = 0, top*1.25 // room for the legend
	p.Add(plotter.NewGrid(), cb, rb)
	p.Legend.Add(cometName, cb)
	p.Legend.Add(rawName, rb)
	p.NominalX(names...)
	p.Y.Tick.Marker = readableTicks{}
	return p.Save(vg.Length(max(len(pairs), 3))*1.6*vg.Inch, 4*vg.Inch, file)
}

// nz replaces a missing value with 0 so that a failed measurement leaves
// a gap rather than breaking the chart.
func nz(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// saveTiles draws plots in a grid into a PNG of w × h.
func saveTiles(file string, plots [][]*plot.Plot, w, h vg.Length) error {
	img := vgimg.New(w, h)
	dc := draw.New(img)
	// A white background: a transparent PNG is unreadable on a dark page.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	t := draw.Tiles{Rows: len(plots), Cols: len(plots[0]), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, t, dc)
	for j := range plots {
		for i, p := range plots[j] {
			if p != nil {
				p.Draw(canvases[j][i])
			}
		}
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readableTicks are gonum's default ticks labelled as the tables print
// numbers: "1,200,000" rather than "1.2e+06".
type readableTicks struct{}

func (readableTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = formatValue(ticks[i].Value)
		}
	}
	return ticks
}

// soakChart draws each soaked quantity over time, one panel per quantity
// and one line per transport.
func (d *plotData) soakChart(file string) error {
	// Minutes on the time axis, or seconds for a soak of a minute or two.
	unit, per := "minutes", time.Minute
	for _, s := range d.soak {
		if len(s.samples) > 0 && s.samples[len(s.samples)-1].At < 2*time.Minute {
			unit, per = "seconds", time.Second
		}
	}
	var rows [][]*plot.Plot
	for i, q := range soakQuantities {
		p := plot.New()
		p.Title.Text = q.name
		p.X.Label.Text = unit
		p.Y.Label.Text = q.unit
		p.Y.Min = 0
		p.Y.Tick.Marker = readableTicks{}
		p.Legend.Top = true
		p.Add(plotter.NewGrid())
		top := 0.0
		for j, s := range d.soak {
			pts := make(plotter.XYs, len(s.samples))
			for k, smp := range s.samples {
				pts[k] = plotter.XY{X: float64(smp.At) / float64(per), Y: q.value(smp)}
				top = math.Max(top, pts[k].Y)
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.Color = palette[j%len(palette)]
			l.Width = vg.Points(2)
			p.Add(l)
			p.Legend.Add(s.name, l)
		}
		p.Y.Max = top * 1.3 // room for the legend
		if i%2 == 0 {
			rows = append(rows, nil)
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], p)
	}
	return saveTiles(file, rows, 10*vg.Inch, vg.Length(len(rows))*3.5*vg.Inch)
}
