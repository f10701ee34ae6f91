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
});
