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

// With navigation.instant (not enabled in mkdocs.yml) mkdocs-material swaps the
// page content without a reload and document$ emits for each new page, which
// must then be typeset. Its first emission is the page as loaded, which
// MathJax's startup typesets by itself: typesetting it again (clearing the
// output cache while the first typeset is under way) left every formula blank.
if (typeof document$ !== "undefined") {
  let initial = true;
  document$.subscribe(() => {
    if (initial) {
      initial = false;
      return;
    }
    MathJax.startup.promise.then(() => {
      MathJax.startup.output.clearCache();
      MathJax.typesetClear();
      MathJax.texReset();
      return MathJax.typesetPromise();
    });
  });
}
