// MathJax configuration for pymdownx.arithmatex (generic mode).
// Arithmatex wraps math in <span class="arithmatex">\( ... \)</span> and
// <div class="arithmatex">\[ ... \]</div>; MathJax typesets only those.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};

// Re-typeset after instant navigation (mkdocs-material's document$ observable).
if (typeof document$ !== "undefined") {
  document$.subscribe(() => {
    MathJax.startup.output.clearCache();
    MathJax.typesetClear();
    MathJax.texReset();
    MathJax.typesetPromise();
  });
}
