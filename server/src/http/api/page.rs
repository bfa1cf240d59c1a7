//! Pagination: `?limit=&cursor=` in, `{items, next_cursor}` out. The cursor is
//! opaque to clients (today an offset into a stable ordering).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;

/// Largest page.
pub const MAX_LIMIT: u32 = 500;
const DEFAULT_LIMIT: u32 = 50;

/// Page request.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page (1–500, default 50).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// One page of items.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl PageParams {
    /// The validated limit.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit.unwrap_or(DEFAULT_LIMIT) {
            0 => Err(ApiError::BadRequest("limit must be at least 1".into())),
            l if l > MAX_LIMIT => Err(ApiError::BadRequest(format!(
                "limit must be at most {MAX_LIMIT}"
            ))),
            l => Ok(l as usize),
        }
    }

    /// Slices an already ordered, already scoped list into one page.
    pub fn apply<T>(&self, items: Vec<T>) -> Result<Page<T>, ApiError> {
        let limit = self.limit()?;
        let offset = match &self.cursor {
            None => 0,
            Some(c) => c
                .parse::<usize>()
                .map_err(|_| ApiError::BadRequest("cursor is not valid".into()))?,
        };
        let total = items.len();
        let items: Vec<T> = items.into_iter().skip(offset).take(limit).collect();
        let end = offset + items.len();
        Ok(Page {
            items,
            next_cursor: (end < total).then(|| end.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_the_whole_list_once() {
        let mut cursor = None;
        let mut seen = vec![];
        loop {
            let p = PageParams {
                limit: Some(3),
                cursor,
            }
            .apply((0..8).collect())
            .unwrap();
            seen.extend(p.items);
            cursor = p.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(seen, (0..8).collect::<Vec<_>>());
        assert!(
            PageParams {
                limit: Some(0),
                cursor: None
            }
            .apply(vec![1])
            .is_err()
        );
        assert!(
            PageParams {
                limit: Some(501),
                cursor: None
            }
            .apply(vec![1])
            .is_err()
        );
        assert!(
            PageParams {
                limit: None,
                cursor: Some("x".into())
            }
            .apply(vec![1])
            .is_err()
        );
    }
}
