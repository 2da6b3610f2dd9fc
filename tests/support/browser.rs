//! A real browser for the tests of `fleet serve`: Debian's headless `chromium` driven over
//! the DevTools protocol with the `headless_chrome` crate (sync, built from its bundled
//! protocol description, never downloading a browser of its own).
//!
//! One [`Browser`] is one chromium process with a fresh temporary profile and a fixed
//! window of [`WIDTH`]x[`HEIGHT`]; dropping it (also while a failed test unwinds) kills
//! chromium and removes the profile. Every wait has a generous timeout ([`WAIT`]):
//! chromium on a busy two-core machine is slow, and nothing here sleeps blindly.
#![allow(dead_code)] // each test uses only part of the harness

use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Emulation, Page};
use headless_chrome::{Browser as Chrome, LaunchOptions, Tab};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 900;
/// How long any wait lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);
/// The longest page a screenshot keeps (CSS pixels), so committed images stay small.
const MAX_SHOT_HEIGHT: f64 = 2400.0;

pub struct Browser {
    // The tab before the browser: it talks through the browser's connection.
    pub tab: Arc<Tab>,
    chrome: Chrome,
    dialogs: Arc<AtomicUsize>,
    // Last: removed after chromium is gone.
    _profile: tempfile::TempDir,
}

/// The chromium to drive: Debian's, or `FLEET_TEST_CHROMIUM`.
fn executable() -> PathBuf {
    if let Some(path) = std::env::var_os("FLEET_TEST_CHROMIUM") {
        return PathBuf::from(path);
    }
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "no chromium at /usr/bin/chromium: the browser tests drive Debian's chromium; \
         install it with `scripts/install-deps --tests` (or apt-get install chromium), \
         or point FLEET_TEST_CHROMIUM at a Chromium binary"
    );
}

impl Browser {
    /// Headless chromium with a temporary profile, no sandbox when root (chromium
    /// refuses to start as root with one).
    pub fn start() -> Browser {
        let path = executable();
        let profile = tempfile::Builder::new()
            .prefix("fleet-chromium-")
            .tempdir()
            .expect("temp dir for the chromium profile");
        let root = unsafe { libc::geteuid() } == 0;
        let options = LaunchOptions::default_builder()
            .path(Some(path.clone()))
            .headless(true)
            .sandbox(!root)
            .window_size(Some((WIDTH, HEIGHT)))
            .user_data_dir(Some(profile.path().to_path_buf()))
            // The connection is dropped after this long without a message.
            .idle_browser_timeout(Duration::from_secs(600))
            .args(vec![
                std::ffi::OsStr::new("--hide-scrollbars"),
                std::ffi::OsStr::new("--no-default-browser-check"),
                // Nothing from the network: no component or field-trial downloads.
                std::ffi::OsStr::new("--disable-component-update"),
                std::ffi::OsStr::new("--disable-field-trial-config"),
                std::ffi::OsStr::new("--lang=en-US"),
            ])
            .build()
            .expect("chromium launch options");
        let chrome = Chrome::new(options).unwrap_or_else(|e| {
            panic!(
                "cannot start {} headless: {e:#}\n(scripts/install-deps --tests installs chromium)",
                path.display()
            )
        });
        let tab = chrome.new_tab().expect("a chromium tab");
        tab.set_default_timeout(WAIT);
        // Count JavaScript dialogs (alert, confirm, prompt) and dismiss them, so an
        // injected alert() is seen and never blocks the page.
        let dialogs = Arc::new(AtomicUsize::new(0));
        let seen = dialogs.clone();
        let weak_tab = Arc::downgrade(&tab);
        tab.add_event_listener(Arc::new(move |event: &Event| {
            if let Event::PageJavascriptDialogOpening(_) = event {
                seen.fetch_add(1, Ordering::SeqCst);
                if let Some(tab) = weak_tab.upgrade() {
                    let _ = tab.get_dialog().dismiss();
                }
            }
        }))
        .expect("listen for dialogs");
        let browser = Browser {
            tab,
            chrome,
            dialogs,
            _profile: profile,
        };
        browser.set_viewport(HEIGHT);
        browser
    }

    /// Goes to `url` and waits until the page has loaded.
    pub fn open(&self, url: &str) -> &Self {
        self.tab
            .navigate_to(url)
            .unwrap_or_else(|e| panic!("open {url}: {e:#}"));
        self.tab
            .wait_until_navigated()
            .unwrap_or_else(|e| panic!("{url} did not load within {WAIT:?}: {e:#}"));
        self
    }

    pub fn url(&self) -> String {
        self.tab.get_url()
    }

    /// Runs `js` in the page and returns its value (JSON; `null` for undefined).
    pub fn eval(&self, js: &str) -> serde_json::Value {
        let wrapped = format!("JSON.stringify((function(){{ return ({js}); }})() ?? null)");
        let value = self
            .tab
            .evaluate(&wrapped, false)
            .unwrap_or_else(|e| panic!("evaluate {js}: {e:#}"))
            .value;
        match value {
            Some(serde_json::Value::String(s)) => serde_json::from_str(&s).unwrap_or_default(),
            _ => serde_json::Value::Null,
        }
    }

    /// Runs `js`, an expression whose value is a promise (e.g. a `fetch`), waits for it
    /// and returns its value (JSON).
    pub fn eval_await(&self, js: &str) -> serde_json::Value {
        let wrapped = format!("(async () => JSON.stringify((await ({js})) ?? null))()");
        let value = self
            .tab
            .evaluate(&wrapped, true)
            .unwrap_or_else(|e| panic!("evaluate {js}: {e:#}"))
            .value;
        match value {
            Some(serde_json::Value::String(s)) => serde_json::from_str(&s).unwrap_or_default(),
            _ => serde_json::Value::Null,
        }
    }

    /// Polls `check` until it answers Some, or fails the test naming `what`.
    fn until<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = check() {
                return v;
            }
            if start.elapsed() > WAIT {
                panic!(
                    "waited {WAIT:?} for {what} on {}; the page:\n{}",
                    self.url(),
                    self.body_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until an element matches `selector`.
    pub fn wait_for(&self, selector: &str) -> &Self {
        let js = format!("document.querySelector({}) !== null", js_str(selector));
        self.until(&format!("an element {selector:?}"), || {
            (self.eval(&js) == serde_json::Value::Bool(true)).then_some(())
        });
        self
    }

    /// Waits until the text of the first element matching `selector` contains `text`;
    /// returns that text.
    pub fn wait_text(&self, selector: &str, text: &str) -> String {
        self.until(&format!("{text:?} in {selector:?}"), || {
            self.text_of(selector).filter(|t| t.contains(text))
        })
    }

    /// The rendered text (innerText) of the first element matching `selector`.
    pub fn text_of(&self, selector: &str) -> Option<String> {
        let js = format!("document.querySelector({})?.innerText", js_str(selector));
        match self.eval(&js) {
            serde_json::Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The text of `selector`, failing the test if there is no such element.
    pub fn text(&self, selector: &str) -> String {
        self.text_of(selector)
            .unwrap_or_else(|| panic!("no element {selector:?} on {}", self.url()))
    }

    /// What the page shows, as text.
    pub fn body_text(&self) -> String {
        self.text_of("body").unwrap_or_default()
    }

    /// The texts of every element matching `selector` that is displayed.
    pub fn visible_texts(&self, selector: &str) -> Vec<String> {
        let js = format!(
            "Array.from(document.querySelectorAll({})).filter(e => e.offsetParent !== null)\
             .map(e => e.innerText)",
            js_str(selector)
        );
        match self.eval(&js) {
            serde_json::Value::Array(items) => items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The value of attribute `name` of every element matching `selector`.
    pub fn attributes(&self, selector: &str, name: &str) -> Vec<String> {
        let js = format!(
            "Array.from(document.querySelectorAll({})).map(e => e.getAttribute({}))",
            js_str(selector),
            js_str(name)
        );
        match self.eval(&js) {
            serde_json::Value::Array(items) => items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Clicks the element matching `selector` with the mouse (waiting for it first).
    pub fn click(&self, selector: &str) -> &Self {
        self.wait_for(selector);
        self.tab
            .find_element(selector)
            .and_then(|e| e.click().map(|_| ()))
            .unwrap_or_else(|e| panic!("click {selector:?}: {e:#}"));
        self
    }

    /// Clicks the link whose text is `text`, then waits for the page it leads to.
    pub fn follow(&self, text: &str) -> &Self {
        let before = self.url();
        let js = format!(
            "Array.from(document.querySelectorAll('a')).findIndex(a => a.innerText.trim() === {})",
            js_str(text)
        );
        let index = self.until(&format!("a link {text:?}"), || {
            self.eval(&js).as_i64().filter(|i| *i >= 0)
        });
        self.tab
            .find_elements("a")
            .ok()
            .and_then(|links| links.into_iter().nth(index as usize))
            .unwrap_or_else(|| panic!("link {text:?} vanished"))
            .click()
            .unwrap_or_else(|e| panic!("click link {text:?}: {e:#}"));
        self.until(&format!("leaving {before} by link {text:?}"), || {
            (self.url() != before).then_some(())
        });
        self.tab
            .wait_until_navigated()
            .unwrap_or_else(|e| panic!("page after {text:?} did not load: {e:#}"));
        self
    }

    /// Empties the input matching `selector` (as deleting its text would, with an `input`
    /// event) and types `value` into it, key by key.
    pub fn fill(&self, selector: &str, value: &str) -> &Self {
        self.wait_for(selector);
        let element = self
            .tab
            .find_element(selector)
            .unwrap_or_else(|e| panic!("input {selector:?}: {e:#}"));
        element
            .call_js_fn(
                "function() { this.value = ''; \
                 this.dispatchEvent(new Event('input', { bubbles: true })); }",
                vec![],
                false,
            )
            .unwrap_or_else(|e| panic!("clear {selector:?}: {e:#}"));
        element
            .type_into(value)
            .unwrap_or_else(|e| panic!("type into {selector:?}: {e:#}"));
        self
    }

    /// Presses Enter in the focused input: the browser submits its form.
    pub fn press_enter(&self) -> &Self {
        self.tab
            .press_key("Enter")
            .unwrap_or_else(|e| panic!("press Enter: {e:#}"));
        self
    }

    /// Submits the form around `selector` as its submit button would, then waits for the
    /// next page.
    pub fn submit(&self, selector: &str) -> &Self {
        self.wait_for(selector);
        let js = format!(
            "(function(){{ const e = document.querySelector({}); const f = e.form || e.closest('form') || e; \
             f.requestSubmit(); return true; }})()",
            js_str(selector)
        );
        self.eval(&js);
        self.tab
            .wait_until_navigated()
            .unwrap_or_else(|e| panic!("page after submitting {selector:?}: {e:#}"));
        self
    }

    /// How many JavaScript dialogs (alert, confirm, prompt) pages opened so far.
    pub fn dialogs(&self) -> usize {
        self.dialogs.load(Ordering::SeqCst)
    }

    /// A PNG of the whole page (up to [`MAX_SHOT_HEIGHT`]) at the fixed width: the
    /// viewport is stretched to the page's height for the shot, then set back.
    pub fn screenshot(&self) -> Vec<u8> {
        let metrics = self
            .tab
            .call_method(Page::GetLayoutMetrics(None))
            .expect("page layout metrics");
        let height = metrics
            .css_content_size
            .height
            .clamp(f64::from(HEIGHT), MAX_SHOT_HEIGHT)
            .ceil() as u32;
        self.set_viewport(height);
        let png = self
            .tab
            .capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true)
            .expect("a screenshot");
        self.set_viewport(HEIGHT);
        png
    }

    fn set_viewport(&self, height: u32) {
        self.tab
            .call_method(Emulation::SetDeviceMetricsOverride {
                width: WIDTH,
                height,
                device_scale_factor: 1.0,
                mobile: false,
                scale: None,
                screen_width: None,
                screen_height: None,
                position_x: None,
                position_y: None,
                dont_set_visible_size: None,
                screen_orientation: None,
                viewport: None,
                display_feature: None,
                device_posture: None,
            })
            .expect("set the viewport");
    }

    /// Writes [`Self::screenshot`] to `path`.
    pub fn save_screenshot(&self, path: &Path) {
        let png = self.screenshot();
        std::fs::write(path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// The chromium process id, to check it is gone after drop.
    pub fn pid(&self) -> Option<u32> {
        self.chrome.get_process_id()
    }

    /// The temporary profile directory: on the command line of every chromium process.
    pub fn profile(&self) -> PathBuf {
        self._profile.path().to_path_buf()
    }
}

/// `s` as a JavaScript string literal.
pub fn js_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}
