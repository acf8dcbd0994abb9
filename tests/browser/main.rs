//! Browser tests: headless Chromium, driven through chromedriver, clicks and types through the
//! admin and the public pages of a real instance (the `tests/api` harness: port 0, its own
//! database, an in-process SMTP capture), on SQLite and on PostgreSQL. They also run axe-core
//! over every page and check keyboard use and small-screen layout.
//!
//! They need Debian's `chromium` and `chromium-driver`, and `npm ci --prefix tests/browser`
//! for axe-core; without them they skip, saying so, unless `BROWSER_TEST_REQUIRED=1`.

#[path = "../api/helpers/mod.rs"]
#[allow(dead_code, unused_imports)]
mod helpers;

mod axe;
mod driver;
mod fixture;
mod page;

mod accessibility;
mod admin;
mod editor;
mod keyboard;
mod layout;
mod sending;

/// Runs a browser test against SQLite and against PostgreSQL, as two tests, each with its own
/// chromedriver and Chromium. The test is an `async fn(Backend, fantoccini::Client)`. With
/// `dark:` first, the browser asks pages for their dark colour scheme.
#[macro_export]
macro_rules! browser_tests {
    (dark: $($name:ident),+ $(,)?) => {
        $crate::browser_tests!(@each Dark, $($name),+);
    };
    ($($name:ident),+ $(,)?) => {
        $crate::browser_tests!(@each Light, $($name),+);
    };
    (@each $scheme:ident, $($name:ident),+) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::driver::run(
                    module_path!(),
                    $crate::helpers::Backend::Sqlite,
                    $crate::driver::Scheme::$scheme,
                    super::$name,
                )
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::Backend::postgres_configured() {
                    $crate::driver::run(
                        module_path!(),
                        $crate::helpers::Backend::Postgres,
                        $crate::driver::Scheme::$scheme,
                        super::$name,
                    )
                    .await;
                }
            }
        }
    )+};
}
