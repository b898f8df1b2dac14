// Two frames after the first render the frame with the text has been drawn; say so, as the
// app's page does.
requestAnimationFrame(() => requestAnimationFrame(() => window.__TAURI__.core.invoke("drawn")));
