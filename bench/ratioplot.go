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
)

var (
	colRatio  = color.RGBA{230, 120, 30, 255} // exactly-once's color in the other plots
	colSpread = color.RGBA{40, 40, 40, 255}
	colParity = color.RGBA{120, 140, 170, 255} // stock's color: the ratio 1
	colTarget = color.RGBA{200, 30, 30, 255}
)

// ratioPNG draws exactly-once's throughput over stock's: a panel per backend
// (rows) and workload (columns), a bar per fault rate at the median over the
// runs, a whisker from the lowest to the highest run, a line at 1 (as fast
// as the stock loop) and a dashed line at the target.
func ratioPNG(cells []cell) ([]byte, error) {
	groups := byCell(cells)
	if len(groups) == 0 {
		return nil, fmt.Errorf("bench: nothing to plot")
	}
	backends, wls, faults := axes(cells)
	top := 1.2
	for _, g := range groups {
		top = max(top, g.Ratio.Max*1.12)
	}
	top = math.Ceil(top*5) / 5 // a multiple of 0.2, so the ticks are round
	runs := runCount(cells)

	w := len(wls) * panelW
	notes := []string{
		fmt.Sprintf("bar: median of %d run(s), whisker: lowest to highest run", runs),
		"x axis: commit_unknown_result rate",
		fmt.Sprintf("solid line: 1 (as fast as stock), dashed: target %.2f", targetRatio),
	}
	header := 30 + 16*len(notes)
	h := header + len(backends)*panelH
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(colBackground), image.Point{}, draw.Src)
	text(img, 10, 18, "Exactly-once throughput / stock loop's (higher is better)", colText)
	for i, n := range notes {
		text(img, 10, 36+16*i, n, colAxis)
	}
	for bi, b := range backends {
		for wi, wl := range wls {
			var pg []cellRuns
			for _, g := range groups {
				if g.Backend == b && g.Workload == wl {
					pg = append(pg, g)
				}
			}
			drawRatioPanel(img, image.Pt(wi*panelW, header+bi*panelH), b+" / "+wl, pg, faults, top)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func drawRatioPanel(img *image.RGBA, o image.Point, title string, groups []cellRuns, faults []float64, top float64) {
	x0, x1 := o.X+plotLeft, o.X+panelW-plotRight
	y0, y1 := o.Y+plotTop, o.Y+panelH-plotBottom
	text(img, x0, o.Y+16, title, colText)
	y := func(v float64) int { return y1 - int(math.Round(float64(y1-y0)*v/top)) }

	for t := 0.0; t <= top+1e-9; t += 0.2 {
		hline(img, x0, x1, y(t), colGrid)
		lbl := fmt.Sprintf("%.1f", t)
		text(img, x0-6-len(lbl)*charW, y(t)+4, lbl, colAxis)
	}
	hline(img, x0, x1, y1, colAxis)
	vline(img, x0, y0, y1, colAxis)

	groupW := (x1 - x0) / max(len(faults), 1)
	barW := min(48, groupW/2)
	for fi, f := range faults {
		gx := x0 + fi*groupW + groupW/2
		lbl := pct(f)
		text(img, gx-len(lbl)*charW/2, y1+16, lbl, colAxis)
		i := slices.IndexFunc(groups, func(g cellRuns) bool { return g.Fault == f })
		if i < 0 {
			continue
		}
		s := groups[i].Ratio
		fill(img, image.Rect(gx-barW/2, y(s.Median), gx+barW/2, y1), colRatio)
		if s.Max > s.Min {
			vline(img, gx, y(s.Max), y(s.Min), colSpread)
			hline(img, gx-6, gx+6, y(s.Max), colSpread)
			hline(img, gx-6, gx+6, y(s.Min), colSpread)
		}
		vl := fmt.Sprintf("%.2f", s.Median)
		text(img, gx+barW/2+3, y(s.Median)+4, vl, colText)
	}
	// The references go over the bars, so they stay readable.
	hline(img, x0, x1, y(1), colParity)
	for x := x0; x < x1; x += 8 {
		hline(img, x, min(x+4, x1), y(targetRatio), colTarget)
	}
}
