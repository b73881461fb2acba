//! Keyset pagination shared by every list: `first/after` and `last/before` over ascending IDs.
//! The GraphQL layer turns cursors into IDs and back; this module only knows numbers.

use chrono::{DateTime, Utc};

use crate::error::{AppError, AppResult};

pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 500;

/// The caller's paging arguments, cursors already decoded (`C` is an ID or a richer cursor).
#[derive(Debug, Clone)]
pub struct PageArgs<C = i64> {
    pub first: Option<i32>,
    pub after: Option<C>,
    pub last: Option<i32>,
    pub before: Option<C>,
}

impl<C> Default for PageArgs<C> {
    fn default() -> Self {
        PageArgs {
            first: None,
            after: None,
            last: None,
            before: None,
        }
    }
}

/// What to fetch: `limit + 1` rows forward from `after`, or backward from `before` (in reversed
/// order), so that one extra row tells whether there is more.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub limit: i64,
    pub backward: bool,
    pub has_after: bool,
    pub has_before: bool,
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub total_count: i64,
}

impl<T> Page<T> {
    /// A page from rows fetched one past `first` (the extra row says a next page exists).
    pub fn from_overfetch(
        mut rows: Vec<T>,
        first: i64,
        has_previous_page: bool,
        total_count: i64,
    ) -> Self {
        let has_next_page = rows.len() as i64 > first;
        rows.truncate(first.max(0) as usize);
        Page {
            items: rows,
            has_next_page,
            has_previous_page,
            total_count,
        }
    }

    /// The same page with each item transformed.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            total_count: self.total_count,
        }
    }
}

fn check_size(field: &str, size: i32) -> AppResult<i64> {
    size_within(field, i64::from(size), i64::from(MAX_PAGE_SIZE))
}

/// A page size given in `field`, between 1 and `max` (lists with a smaller page than the CRM
/// lists' [`MAX_PAGE_SIZE`] say so here); anything else is BAD_USER_INPUT, never clamped.
pub fn size_within(field: &str, size: i64, max: i64) -> AppResult<i64> {
    if !(1..=max).contains(&size) {
        return Err(AppError::bad_input(
            field,
            format!("page size must be between 1 and {max}"),
        ));
    }
    Ok(size)
}

impl<C> PageArgs<C> {
    pub fn window(&self) -> AppResult<Window> {
        if self.first.is_some() && self.last.is_some() {
            return Err(AppError::bad_input(
                "last",
                "pass either first or last, not both",
            ));
        }
        let (limit, backward) = match (self.first, self.last) {
            (_, Some(last)) => (check_size("last", last)?, true),
            (Some(first), None) => (check_size("first", first)?, false),
            (None, None) => (i64::from(DEFAULT_PAGE_SIZE), false),
        };
        Ok(Window {
            limit,
            backward,
            has_after: self.after.is_some(),
            has_before: self.before.is_some(),
        })
    }
}

impl Window {
    /// Rows to ask the database for.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Turns the fetched rows (in query order) into a page in ascending order.
    pub fn finish<T>(self, mut rows: Vec<T>, total_count: i64) -> Page<T> {
        let has_more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        if self.backward {
            rows.reverse();
            Page {
                items: rows,
                has_next_page: self.has_before,
                has_previous_page: has_more,
                total_count,
            }
        } else {
            Page {
                items: rows,
                has_next_page: has_more,
                has_previous_page: self.has_after,
                total_count,
            }
        }
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern.
pub fn like_pattern(search: &str) -> String {
    let escaped = search
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_bounded() {
        let args: PageArgs = PageArgs {
            first: Some(0),
            ..Default::default()
        };
        assert!(args.window().is_err());
        let args: PageArgs = PageArgs {
            first: Some(501),
            ..Default::default()
        };
        assert!(args.window().is_err());
        assert_eq!(PageArgs::<i64>::default().window().unwrap().limit, 20);
    }

    #[test]
    fn backward_pages_come_back_ascending() {
        let window = PageArgs::<i64> {
            last: Some(2),
            before: Some(10),
            ..Default::default()
        }
        .window()
        .unwrap();
        let page = window.finish(vec![9, 8, 7], 9);
        assert_eq!(page.items, vec![8, 9]);
        assert!(page.has_previous_page);
        assert!(page.has_next_page);
    }
}

/// A position in a list ordered newest first by a time, then by ID (newest first): rows
/// "older than" it are those with `(time, id) < (at, id)`, which SQL compares as a row value.
/// `id: i64::MIN` means "before this moment", `i64::MAX` "at this moment or before".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimePosition {
    pub at: DateTime<Utc>,
    pub id: i64,
}
