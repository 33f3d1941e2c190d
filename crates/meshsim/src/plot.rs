//! `--plot FILE.svg`: the charts an experiment's reader wants, drawn with plotters' SVG backend.
//!
//! An experiment describes what to draw as [`Panel`]s on its report ([`crate::report::Report::plot`]);
//! this module lays them out one under another in one SVG file. Three kinds cover the experiments:
//! a distribution as its CDF (latencies against flood's), counts per integer value side by side
//! (hops), and lines over an x axis (reliability broadcast by broadcast after crashes).

use std::path::Path;

use plotters::prelude::*;

/// One chart.
#[derive(Clone, Debug)]
pub(crate) enum Panel {
    /// The cumulative distribution of each named sample set: the share of samples at or below x.
    Cdf {
        /// The chart's title.
        title: String,
        /// The x axis.
        x_label: String,
        /// Named sample sets.
        series: Vec<(String, Vec<f64>)>,
    },
    /// How many samples take each integer value, the series' bars side by side.
    Histogram {
        /// The chart's title.
        title: String,
        /// The x axis.
        x_label: String,
        /// Named sample sets.
        series: Vec<(String, Vec<u64>)>,
    },
    /// Lines through points.
    Lines {
        /// The chart's title.
        title: String,
        /// The x axis.
        x_label: String,
        /// The y axis.
        y_label: String,
        /// Named point lists.
        series: Vec<(String, Vec<(f64, f64)>)>,
    },
}

const WIDTH: u32 = 900;
const PANEL_HEIGHT: u32 = 420;

/// The series' colours, in order.
fn colour(i: usize) -> RGBColor {
    [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
    ][i % 4]
}

/// Writes `panels` to `path` as one SVG, one panel under another.
pub(crate) fn write_svg(path: &Path, panels: &[Panel]) -> Result<(), String> {
    if panels.is_empty() {
        return Err("the experiment described no chart".into());
    }
    let height = PANEL_HEIGHT * u32::try_from(panels.len()).unwrap_or(1);
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    for (area, panel) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
        draw(area, panel).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    root.present().map_err(|e| format!("{}: {e}", path.display()))
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>>;

fn draw(area: &Area<'_>, panel: &Panel) -> DrawResult {
    match panel {
        Panel::Cdf {
            title,
            x_label,
            series,
        } => {
            let curves: Vec<(String, Vec<(f64, f64)>)> = series
                .iter()
                .map(|(name, samples)| (name.clone(), cdf(samples)))
                .collect();
            lines(area, title, x_label, "share at or below x", &curves)
        }
        Panel::Histogram {
            title,
            x_label,
            series,
        } => histogram(area, title, x_label, series),
        Panel::Lines {
            title,
            x_label,
            y_label,
            series,
        } => lines(area, title, x_label, y_label, series),
    }
}

/// Points kept of a CDF: enough for a smooth curve, few enough for a small file (a run has tens of
/// thousands of deliveries).
const CDF_POINTS: usize = 1000;

/// The points of the empirical CDF of `samples`, at most [`CDF_POINTS`] of them (the last included).
fn cdf(samples: &[f64]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let step = n.div_ceil(CDF_POINTS).max(1);
    sorted
        .iter()
        .enumerate()
        .filter(|(i, _)| (i + 1) % step == 0 || i + 1 == n)
        .map(|(i, &x)| (x, (i + 1) as f64 / n as f64))
        .collect()
}

/// The smallest and largest x and y over every series, widened so a flat one still has a range.
fn bounds(series: &[(String, Vec<(f64, f64)>)]) -> ((f64, f64), (f64, f64)) {
    let points = || series.iter().flat_map(|(_, points)| points.iter());
    let fold = |f: fn(&(f64, f64)) -> f64| {
        points()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    };
    let widen = |(lo, hi): (f64, f64)| {
        if !lo.is_finite() {
            (0.0, 1.0)
        } else if (hi - lo).abs() < f64::EPSILON {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo, hi)
        }
    };
    (widen(fold(|p| p.0)), widen(fold(|p| p.1)))
}

fn lines(
    area: &Area<'_>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> DrawResult {
    let ((x0, x1), (y0, y1)) = bounds(series);
    // From 0 (or below) to a little over the top, so a line along its maximum stays visible.
    let y1 = if y1 > 0.0 {
        y1.max(y0 + f64::EPSILON) * 1.05
    } else {
        1.0
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0.min(0.0)..y1)?;
    chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw()?;
    for (i, (name, points)) in series.iter().enumerate() {
        let style = colour(i).stroke_width(2);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn histogram(area: &Area<'_>, title: &str, x_label: &str, series: &[(String, Vec<u64>)]) -> DrawResult {
    let max_x = series
        .iter()
        .flat_map(|(_, v)| v.iter())
        .copied()
        .max()
        .unwrap_or(0);
    let counts: Vec<Vec<u64>> = series
        .iter()
        .map(|(_, values)| {
            let mut counts = vec![0u64; usize::try_from(max_x).unwrap_or(0) + 1];
            for &v in values {
                if let Some(slot) = usize::try_from(v).ok().and_then(|v| counts.get_mut(v)) {
                    *slot += 1;
                }
            }
            counts
        })
        .collect();
    let max_y = counts.iter().flatten().copied().max().unwrap_or(1).max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..max_x as f64 + 0.5, 0.0..max_y as f64 * 1.05)?;
    // One label per integer value; the axis runs half a slot beyond each end.
    let whole = |x: &f64| {
        if x.fract() == 0.0 {
            format!("{x:.0}")
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_labels(usize::try_from(max_x).unwrap_or(0).saturating_add(2).min(40))
        .x_label_formatter(&whole)
        .x_desc(x_label)
        .y_desc("count")
        .draw()?;
    // Each value's slot is shared by the series, bar beside bar.
    let width = 0.8 / series.len().max(1) as f64;
    for (i, ((name, _), counts)) in series.iter().zip(&counts).enumerate() {
        let style = colour(i).filled();
        let left = -0.4 + width * i as f64;
        let bars = counts.iter().enumerate().map(move |(x, &count)| {
            let x = x as f64 + left;
            Rectangle::new([(x, 0.0), (x + width, count as f64)], style)
        });
        chart
            .draw_series(bars)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], style));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(position)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cdf_rises_to_one_over_sorted_samples() {
        let points = cdf(&[3.0, 1.0, 2.0, 2.0]);
        assert_eq!(points, vec![(1.0, 0.25), (2.0, 0.5), (2.0, 0.75), (3.0, 1.0)]);
    }

    #[test]
    fn every_panel_kind_draws_an_svg_with_its_labels() {
        let dir = std::env::temp_dir().join(format!("meshsim-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plot.svg");
        let panels = [
            Panel::Cdf {
                title: "latency".into(),
                x_label: "ms".into(),
                series: vec![("gossip".into(), vec![1.0, 5.0]), ("flood".into(), vec![2.0])],
            },
            Panel::Histogram {
                title: "hops".into(),
                x_label: "hop".into(),
                series: vec![("gossip".into(), vec![1, 2, 2]), ("flood".into(), vec![])],
            },
            Panel::Lines {
                title: "reliability".into(),
                x_label: "broadcast".into(),
                y_label: "share".into(),
                series: vec![("after".into(), vec![(1.0, 0.5), (2.0, 1.0)])],
            },
        ];
        write_svg(&path, &panels).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for text in ["latency", "hops", "reliability", "gossip", "flood", "broadcast"] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(write_svg(&path, &[]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
