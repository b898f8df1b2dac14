// Small helpers for plain HTML pages (no external resources) and form bodies.

export function esc(value) {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

export function page({ title, body, lang = 'en', style = '' }) {
  return `<!DOCTYPE html>
<html lang="${esc(lang)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body { font-family: system-ui, sans-serif; background: #f5f5f7; color: #1d1d1f; margin: 0; }
main { max-width: 380px; margin: 48px auto; background: #fff; padding: 28px 32px; border-radius: 12px; box-shadow: 0 2px 12px rgba(0,0,0,.08); }
h1 { font-size: 22px; margin: 0 0 18px; }
label { display: block; font-size: 14px; margin: 12px 0 4px; }
input[type=text], input[type=password], input[type=email], input:not([type]) { width: 100%; box-sizing: border-box; padding: 9px 10px; font-size: 15px; border: 1px solid #c7c7cc; border-radius: 6px; }
button, input[type=submit], a.button { display: block; width: 100%; box-sizing: border-box; margin-top: 16px; padding: 10px; font-size: 15px; border-radius: 6px; border: 1px solid #5d34f2; background: #5d34f2; color: #fff; text-align: center; text-decoration: none; cursor: pointer; }
.secondary { background: #fff !important; color: #5d34f2 !important; }
.muted { color: #6e6e73; font-size: 13px; }
#error, #ap_error { color: #c0392b; background: #fdecea; padding: 8px 10px; border-radius: 6px; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
td, th { border-bottom: 1px solid #eee; padding: 4px 6px; text-align: left; }
${style}
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

export async function readForm(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw Object.assign(new Error('request body too large'), { status: 413 });
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
