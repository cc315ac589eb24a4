package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"slices"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Plot geometry, in pixels. basicfont's face is 7×13.
const (
	panelW, panelH = 360, 250
	plotLeft       = 62 // room for the y-axis labels
	plotRight      = 12
	plotTop        = 26 // room for the panel title
	plotBottom     = 34 // room for the x-axis labels
	headerH        = 56 // the figure's title and legend
	charW          = 7
)

var (
	colBackground = color.RGBA{255, 255, 255, 255}
	colAxis       = color.RGBA{60, 60, 60, 255}
	colGrid       = color.RGBA{225, 225, 225, 255}
	colText       = color.RGBA{20, 20, 20, 255}
	colModes      = [2]color.RGBA{{120, 140, 170, 255}, {230, 120, 30, 255}} // stock, exactly-once
)

// plotPNG draws a grid of bar charts, one panel per backend (rows) and
// workload (columns), with the fault rates along each x axis and a bar per
// mode, and returns it as PNG. Each panel has its own y scale from zero.
func plotPNG(title string, cells []cell, metric func(*modeResult) float64, format func(float64) string) ([]byte, error) {
	backends, wls, faults := axes(cells)
	if len(cells) == 0 {
		return nil, fmt.Errorf("bench: nothing to plot")
	}
	w := len(wls) * panelW
	items, header := legend(w)
	h := header + len(backends)*panelH
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(colBackground), image.Point{}, draw.Src)

	text(img, 10, 18, title, colText)
	for _, it := range items {
		if it.mode >= 0 {
			fill(img, image.Rect(it.x, it.y-11, it.x+14, it.y+3), colModes[it.mode])
			text(img, it.x+20, it.y, it.text, colText)
		} else {
			text(img, it.x, it.y, it.text, colAxis)
		}
	}

	for bi, b := range backends {
		for wi, wl := range wls {
			var pc []*cell
			for i := range cells {
				if cells[i].Backend == b && cells[i].Workload == wl {
					pc = append(pc, &cells[i])
				}
			}
			origin := image.Pt(wi*panelW, header+bi*panelH)
			drawPanel(img, origin, b+" / "+wl, pc, faults, metric, format)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// axes lists the backends (the plots' rows), workloads (columns) and fault
// rates (x axis) of cells, in the matrix's order.
func axes(cells []cell) (backends, workloads []string, faults []float64) {
	for _, c := range cells {
		if !slices.Contains(backends, c.Backend) {
			backends = append(backends, c.Backend)
		}
		if !slices.Contains(workloads, c.Workload) {
			workloads = append(workloads, c.Workload)
		}
		if !slices.Contains(faults, c.Fault) {
			faults = append(faults, c.Fault)
		}
	}
	return backends, workloads, faults
}

// legendItem is one entry of the figure's legend: a mode's swatch and name
// (mode ≥ 0) or a note (mode -1), its text's baseline starting at x, y.
type legendItem struct {
	x, y int
	mode int
	text string
}

// width is how many pixels the item takes.
func (it legendItem) width() int {
	if it.mode >= 0 {
		return 20 + len(it.text)*charW
	}
	return len(it.text) * charW
}

// legend lays out the legend under the title of a figure w pixels wide,
// starting a new line for an item that would not fit (a single-cell plot is
// one panel wide), and returns it with the header's height.
func legend(w int) ([]legendItem, int) {
	var items []legendItem
	for m, md := range modes {
		items = append(items, legendItem{mode: m, text: md.name})
	}
	items = append(items, legendItem{mode: -1, text: "x axis: commit_unknown_result rate"})
	x, y := 10, 41
	for i := range items {
		if x > 10 && x+items[i].width() > w-10 {
			x, y = 10, y+18
		}
		items[i].x, items[i].y = x, y
		x += items[i].width() + 24
	}
	return items, headerH + (y - 41)
}

func drawPanel(img *image.RGBA, o image.Point, title string, cells []*cell, faults []float64, metric func(*modeResult) float64, format func(float64) string) {
	x0, x1 := o.X+plotLeft, o.X+panelW-plotRight
	y0, y1 := o.Y+plotTop, o.Y+panelH-plotBottom // y1 is the axis
	text(img, o.X+plotLeft, o.Y+16, title, colText)

	top := 0.0
	for _, c := range cells {
		for m := range c.Modes {
			top = max(top, metric(&c.Modes[m]))
		}
	}
	top = niceCeil(top * 1.12)
	const ticks = 4
	for t := 0; t <= ticks; t++ {
		y := y1 - (y1-y0)*t/ticks
		hline(img, x0, x1, y, colGrid)
		lbl := format(top * float64(t) / ticks)
		text(img, x0-6-len(lbl)*charW, y+4, lbl, colAxis)
	}
	hline(img, x0, x1, y1, colAxis)
	vline(img, x0, y0, y1, colAxis)

	groupW := (x1 - x0) / max(len(faults), 1)
	barW := min(40, groupW*2/5)
	for fi, f := range faults {
		gx := x0 + fi*groupW + groupW/2 // group center
		lbl := pct(f)
		text(img, gx-len(lbl)*charW/2, y1+16, lbl, colAxis)
		var c *cell
		for _, cc := range cells {
			if cc.Fault == f {
				c = cc
			}
		}
		if c == nil {
			continue
		}
		for m := range c.Modes {
			v := metric(&c.Modes[m])
			bx := gx - barW - 2 + m*(barW+4)
			bh := 0
			if top > 0 {
				bh = int(math.Round(float64(y1-y0) * v / top))
			}
			fill(img, image.Rect(bx, y1-bh, bx+barW, y1), colModes[m])
			vl := format(v)
			text(img, bx+barW/2-len(vl)*charW/2, y1-bh-3, vl, colText)
		}
	}
}

// niceCeil rounds v up to 1, 2, 4 or 8 times a power of ten, so that the
// four axis ticks are round too.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 4, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// formatCount formats a rate compactly: 950, 12.3k, 1.2M.
func formatCount(v float64) string {
	switch {
	case v >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return trimZero(fmt.Sprintf("%.1f", v/1e3)) + "k"
	}
	return fmt.Sprintf("%.0f", v)
}

// formatNanos formats a duration in nanoseconds compactly: 350us, 1.2ms.
func formatNanos(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1e9:
		return trimZero(fmt.Sprintf("%.1f", v/1e9)) + "s"
	case v >= 1e7:
		return fmt.Sprintf("%.0fms", v/1e6)
	case v >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", v/1e6)) + "ms"
	case v >= 1e3:
		return fmt.Sprintf("%.0fus", v/1e3)
	}
	return fmt.Sprintf("%.0fns", v)
}

func trimZero(s string) string {
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

func hline(img *image.RGBA, x0, x1, y int, c color.Color) {
	fill(img, image.Rect(x0, y, x1+1, y+1), c)
}

func vline(img *image.RGBA, x, y0, y1 int, c color.Color) {
	fill(img, image.Rect(x, y0, x+1, y1+1), c)
}
