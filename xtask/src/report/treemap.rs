//! The squarified treemap layout (Bruls, Huizing and van Wijk, 2000): a
//! rectangle cut into one rectangle per value, each with an area
//! proportional to its value, rows chosen so that the rectangles stay as
//! close to squares as the order allows. Pure arithmetic: the same values
//! give the same rectangles.

/// An axis-aligned rectangle: top-left corner, width and height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn new(x: f64, y: f64, w: f64, h: f64) -> Rect {
        Rect {
            x,
            y,
            w: w.max(0.0),
            h: h.max(0.0),
        }
    }

    pub fn area(&self) -> f64 {
        self.w * self.h
    }

    /// The rectangle shrunk by `left`, `top`, `right` and `bottom`
    /// (never below nothing).
    pub fn inset(&self, left: f64, top: f64, right: f64, bottom: f64) -> Rect {
        Rect::new(
            self.x + left.min(self.w),
            self.y + top.min(self.h),
            self.w - left - right,
            self.h - top - bottom,
        )
    }
}

/// One rectangle per value, in the order given, tiling `bounds`: each
/// value's share of the sum is its share of the area. Values that are not
/// positive get an empty rectangle at the bounds' corner. Callers sort the
/// values (largest first) when the order does not matter; squarifying keeps
/// whatever order it is given, reading in rows.
pub fn squarify(values: &[f64], bounds: Rect) -> Vec<Rect> {
    let empty = Rect::new(bounds.x, bounds.y, 0.0, 0.0);
    let mut out = vec![empty; values.len()];
    let live: Vec<usize> = (0..values.len())
        .filter(|&index| values[index].is_finite() && values[index] > 0.0)
        .collect();
    let sum: f64 = live.iter().map(|&index| values[index]).sum();
    if live.is_empty() || bounds.area() <= 0.0 {
        return out;
    }
    let scale = bounds.area() / sum;
    let areas: Vec<f64> = live.iter().map(|&index| values[index] * scale).collect();

    let mut rest = bounds;
    let mut start = 0;
    while start < areas.len() {
        let short = rest.w.min(rest.h);
        let mut end = start + 1;
        let mut worst = worst_ratio(&areas[start..end], short);
        while end < areas.len() {
            let next = worst_ratio(&areas[start..end + 1], short);
            if next > worst {
                break;
            }
            worst = next;
            end += 1;
        }
        let row = &areas[start..end];
        let row_area: f64 = row.iter().sum();
        let last_row = end == areas.len();
        if rest.w >= rest.h {
            // A column on the left, as tall as what is left.
            let width = if last_row || rest.h <= 0.0 {
                rest.w
            } else {
                (row_area / rest.h).min(rest.w)
            };
            let mut y = rest.y;
            for (offset, area) in row.iter().enumerate() {
                let height = if offset + 1 == row.len() {
                    rest.y + rest.h - y
                } else if width > 0.0 {
                    area / width
                } else {
                    0.0
                };
                out[live[start + offset]] = Rect::new(rest.x, y, width, height);
                y += height;
            }
            rest = Rect::new(rest.x + width, rest.y, rest.w - width, rest.h);
        } else {
            // A row along the top, as wide as what is left.
            let height = if last_row || rest.w <= 0.0 {
                rest.h
            } else {
                (row_area / rest.w).min(rest.h)
            };
            let mut x = rest.x;
            for (offset, area) in row.iter().enumerate() {
                let width = if offset + 1 == row.len() {
                    rest.x + rest.w - x
                } else if height > 0.0 {
                    area / height
                } else {
                    0.0
                };
                out[live[start + offset]] = Rect::new(x, rest.y, width, height);
                x += width;
            }
            rest = Rect::new(rest.x, rest.y + height, rest.w, rest.h - height);
        }
        start = end;
    }
    out
}

/// The worst aspect ratio (≥ 1) of a row of `areas` laid along a side of
/// length `side`.
fn worst_ratio(areas: &[f64], side: f64) -> f64 {
    let sum: f64 = areas.iter().sum();
    if sum <= 0.0 || side <= 0.0 {
        return f64::INFINITY;
    }
    let side2 = side * side;
    let sum2 = sum * sum;
    areas
        .iter()
        .map(|&area| (side2 * area / sum2).max(sum2 / (side2 * area)))
        .fold(1.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPSILON: f64 = 1e-6;

    fn inside(rect: &Rect, bounds: &Rect) -> bool {
        rect.x >= bounds.x - EPSILON
            && rect.y >= bounds.y - EPSILON
            && rect.x + rect.w <= bounds.x + bounds.w + EPSILON
            && rect.y + rect.h <= bounds.y + bounds.h + EPSILON
    }

    fn overlap(a: &Rect, b: &Rect) -> f64 {
        let w = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
        let h = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
        w.max(0.0) * h.max(0.0)
    }

    /// Sizes like a function's: a few large distributions, many small files.
    fn sample() -> Vec<f64> {
        vec![
            25_044_066.0,
            2_238_692.0,
            647_379.0,
            525_414.0,
            352_830.0,
            282_396.0,
            58_082.0,
            15_998.0,
            1.0,
        ]
    }

    #[test]
    fn areas_are_proportional_to_the_values() {
        let bounds = Rect::new(10.0, 20.0, 960.0, 420.0);
        for values in [
            sample(),
            vec![6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0],
            vec![1.0],
            vec![3.0, 1.0],
        ] {
            let rects = squarify(&values, bounds);
            let sum: f64 = values.iter().sum();
            assert_eq!(rects.len(), values.len());
            for (value, rect) in values.iter().zip(&rects) {
                let expected = value / sum * bounds.area();
                assert!(
                    (rect.area() - expected).abs() <= 1e-6 * bounds.area(),
                    "{value}: area {} instead of {expected}",
                    rect.area()
                );
            }
            let total: f64 = rects.iter().map(Rect::area).sum();
            assert!(
                (total - bounds.area()).abs() < 1e-6 * bounds.area(),
                "the rectangles tile the bounds"
            );
        }
    }

    #[test]
    fn rectangles_stay_inside_the_bounds_and_do_not_overlap() {
        let bounds = Rect::new(3.5, 70.0, 640.0, 300.0);
        let values = sample();
        let rects = squarify(&values, bounds);
        for (index, rect) in rects.iter().enumerate() {
            assert!(inside(rect, &bounds), "{rect:?} leaves {bounds:?}");
            assert!(rect.w >= 0.0 && rect.h >= 0.0);
            for other in &rects[index + 1..] {
                assert!(overlap(rect, other) < EPSILON, "{rect:?} overlaps {other:?}");
            }
        }
    }

    #[test]
    fn equal_values_in_a_square_are_squares() {
        let rects = squarify(&[1.0; 4], Rect::new(0.0, 0.0, 100.0, 100.0));
        for rect in rects {
            assert!(
                (rect.w - 50.0).abs() < EPSILON && (rect.h - 50.0).abs() < EPSILON,
                "{rect:?}"
            );
        }
    }

    #[test]
    fn the_layout_is_deterministic_and_keeps_the_order() {
        let bounds = Rect::new(0.0, 0.0, 960.0, 420.0);
        let one = squarify(&sample(), bounds);
        let two = squarify(&sample(), bounds);
        assert_eq!(one, two);
        // The first value starts at the corner.
        assert_eq!((one[0].x, one[0].y), (0.0, 0.0));
    }

    #[test]
    fn nothing_to_lay_out_gives_empty_rectangles() {
        let bounds = Rect::new(5.0, 6.0, 100.0, 50.0);
        assert!(squarify(&[], bounds).is_empty());
        let rects = squarify(&[0.0, 2.0, -1.0, f64::NAN], bounds);
        assert_eq!(rects[0].area(), 0.0);
        assert!((rects[1].area() - bounds.area()).abs() < EPSILON);
        assert_eq!(rects[2].area(), 0.0);
        assert_eq!(rects[3].area(), 0.0);
        let rects = squarify(&[1.0, 1.0], Rect::new(0.0, 0.0, 0.0, 10.0));
        assert!(rects.iter().all(|rect| rect.area() == 0.0));
    }

    #[test]
    fn inset_never_goes_negative() {
        let rect = Rect::new(0.0, 0.0, 10.0, 4.0).inset(2.0, 3.0, 2.0, 3.0);
        assert_eq!(rect.h, 0.0);
        assert!(rect.w >= 0.0);
    }
}
