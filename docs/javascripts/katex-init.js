// Render the math that pymdownx.arithmatex (generic mode) leaves as \( ... \) and \[ ... \],
// on every page load (Material's instant loading re-renders through document$).
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "\\[", right: "\\]", display: true },
      { left: "\\(", right: "\\)", display: false },
    ],
    throwOnError: true,
  });
  // On the layer pages and the BPTT page the code is the point: show it beside the
  // equations, opened (mkdocstrings folds each object's source into a <details>).
  if (/\/(layers|bptt)\//.test(location.pathname)) {
    body.querySelectorAll("details.mkdocstrings-source").forEach((d) => { d.open = true; });
  }
});
