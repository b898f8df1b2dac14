//! The pages the loopback listener shows in the browser. Static HTML with no script and no
//! resource from anywhere; the only text from outside (a provider's error words) is escaped.

use super::error::ProviderRefusal;

/// No script, no fetches, no framing; the inline style is the page's only resource.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The language the pages speak: English unless the person's locale is Japanese.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    /// English, the default.
    #[default]
    En,
    /// Japanese.
    Ja,
}

impl Language {
    /// Picks from a BCP 47 tag such as `ja-JP` or `en_US.UTF-8`.
    pub fn from_tag(tag: &str) -> Self {
        if tag.to_ascii_lowercase().starts_with("ja") {
            Language::Ja
        } else {
            Language::En
        }
    }
    /// The BCP 47 tag (`en`, `ja`): the pages' `lang`, and what `ui_locales` may be set to.
    pub fn tag(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Ja => "ja",
        }
    }
}

/// One answer for the browser: a whole HTML document and its HTTP status. The listener sends it
/// with [`CSP`].
pub struct Page {
    /// The HTTP status code: 200, or 4xx for a request the listener did not accept.
    pub status: u16,
    /// The complete document, every outside text in it escaped. Its `<main>` has an `id` naming
    /// the page (`ok`, `refused`, `failed`, `not-completed`, `return`, `unrelated`,
    /// `not-found`).
    pub html: String,
}

struct Text {
    title: &'static str,
    body: &'static str,
}

fn text(lang: Language, en: Text, ja: Text) -> Text {
    match lang {
        Language::En => en,
        Language::Ja => ja,
    }
}

/// The sign-in is complete and kept: the tab may be closed.
pub fn signed_in(lang: Language) -> Page {
    let t = text(
        lang,
        Text {
            title: "You're signed in",
            body: "Return to Logto Desktop. You can close this tab.",
        },
        Text {
            title: "サインインしました",
            body: "Logto Desktop に戻ってください。このタブは閉じてかまいません。",
        },
    );
    page(lang, 200, t.title, t.body, None, "ok")
}

/// The provider's `error` came back (the person declined, for example); its words are shown,
/// escaped.
pub fn refused(lang: Language, refusal: &ProviderRefusal) -> Page {
    let t = text(
        lang,
        Text { title: "Sign-in was not completed", body: "Logto did not complete the sign-in. Return to Logto Desktop to try again." },
        Text { title: "サインインは完了しませんでした", body: "Logto はサインインを完了しませんでした。Logto Desktop に戻って、もう一度お試しください。" },
    );
    page(
        lang,
        200,
        t.title,
        t.body,
        Some(&refusal.to_string()),
        "refused",
    )
}

/// A callback of this sign-in failed a check (a missing or foreign `iss`, no code); `reason` is
/// shown, escaped, so it must hold nothing secret. Status 400.
pub fn failed(lang: Language, reason: &str) -> Page {
    let t = text(
        lang,
        Text {
            title: "Sign-in stopped",
            body: "The answer could not be accepted. Return to Logto Desktop to try again.",
        },
        Text {
            title: "サインインを中止しました",
            body:
                "応答を受け付けられませんでした。Logto Desktop に戻って、もう一度お試しください。",
        },
    );
    page(lang, 400, t.title, t.body, Some(reason), "failed")
}

/// The sign-in came back but did not complete in the app (the code exchange, the checks or the
/// keychain failed, or it was cancelled); the app says why.
pub fn not_completed(lang: Language) -> Page {
    let t = text(
        lang,
        Text {
            title: "Sign-in was not completed",
            body: "Logto Desktop could not finish signing you in. Return to it to see why and try again.",
        },
        Text {
            title: "サインインは完了しませんでした",
            body: "Logto Desktop でサインインを完了できませんでした。アプリに戻って理由を確認し、もう一度お試しください。",
        },
    );
    page(lang, 200, t.title, t.body, None, "not-completed")
}

/// The app is still finishing when the browser may not wait any longer: a neutral word.
pub fn return_to_app(lang: Language) -> Page {
    let t = text(
        lang,
        Text {
            title: "Return to Logto Desktop",
            body: "Logto Desktop is finishing your sign-in and shows the result. You can close this tab.",
        },
        Text {
            title: "Logto Desktop に戻ってください",
            body: "Logto Desktop がサインインを仕上げて結果を表示します。このタブは閉じてかまいません。",
        },
    );
    page(lang, 200, t.title, t.body, None, "return")
}

/// A request with a missing or foreign `state`: not this sign-in's, which goes on waiting.
/// Status 400.
pub fn unrelated(lang: Language) -> Page {
    let t = text(
        lang,
        Text {
            title: "This page is not part of a sign-in in progress",
            body: "If you are signing in, finish in the browser tab that Logto Desktop opened.",
        },
        Text {
            title: "このページは進行中のサインインのものではありません",
            body: "サインイン中の場合は、Logto Desktop が開いたタブで続けてください。",
        },
    );
    page(lang, 400, t.title, t.body, None, "unrelated")
}

/// Anything that is not a callback (another path, method or `Host`, a malformed or oversized
/// request), with the `status` given (404, 405, 400, 414, 431).
pub fn not_found(lang: Language, status: u16) -> Page {
    let t = text(
        lang,
        Text {
            title: "Not found",
            body: "Nothing is here.",
        },
        Text {
            title: "見つかりません",
            body: "ここには何もありません。",
        },
    );
    page(lang, status, t.title, t.body, None, "not-found")
}

fn page(
    lang: Language,
    status: u16,
    title: &str,
    body: &str,
    detail: Option<&str>,
    id: &str,
) -> Page {
    let detail = detail
        .map(|d| {
            format!(
                "<p id=\"detail\"><code>{}</code></p>",
                html_escape::encode_text(d)
            )
        })
        .unwrap_or_default();
    let html = format!(
        r#"<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>
:root {{ color-scheme: light dark; font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans JP", sans-serif; }}
body {{ margin: 0; min-height: 100vh; display: grid; place-items: center; background: Canvas; color: CanvasText; }}
main {{ max-width: 32rem; padding: 2rem; text-align: center; }}
h1 {{ font-size: 1.5rem; margin: 0 0 .75rem; }}
p {{ line-height: 1.5; margin: .5rem 0; }}
code {{ word-break: break-word; }}
</style>
</head>
<body>
<main id="{id}">
<h1>{title}</h1>
<p>{body}</p>
{detail}
</main>
</body>
</html>
"#,
        lang = lang.tag(),
    );
    Page { status, html }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_words_are_escaped_and_pages_have_no_script() {
        let refusal = ProviderRefusal::new(
            "access_denied".into(),
            Some("<script>alert(1)</script><img src=x onerror=y>".into()),
        );
        let page = refused(Language::En, &refusal);
        assert!(!page.html.contains("<script"));
        assert!(!page.html.contains("<img"));
        assert!(page.html.contains("&lt;script&gt;"));
        for page in [
            signed_in(Language::Ja),
            unrelated(Language::En),
            not_found(Language::En, 404),
        ] {
            assert!(!page.html.contains("<script"));
            assert!(!page.html.contains("src="));
            assert!(!page.html.contains("href="));
        }
    }

    #[test]
    fn language_follows_the_tag() {
        assert_eq!(Language::from_tag("ja-JP"), Language::Ja);
        assert_eq!(Language::from_tag("ja_JP.UTF-8"), Language::Ja);
        assert_eq!(Language::from_tag("en-US"), Language::En);
        assert_eq!(Language::from_tag(""), Language::En);
        assert!(signed_in(Language::Ja).html.contains("lang=\"ja\""));
    }
}
