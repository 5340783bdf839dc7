#!/usr/bin/env python
"""Render the documentation notebooks to standalone HTML without Quarto.

The docs site proper is built by `nbdev_docs` (Quarto). Where Quarto is not available this script gives the same
content with standard tools:

1. chapters are taken from `nbs/sidebar.yml` in sidebar order (or all `nbs/*.ipynb`, `index.ipynb` first, when the
   sidebar is missing); chapters listed there but absent are reported;
2. each notebook goes through nbdev's own docs processing -- `nbdev.processors.FilterDefaults`, the processors that
   `nbdev_docs`/`nbdev_proc_nbs` apply (front matter from the `# Title` / `> summary` cell, `#| hide` and
   `#| export` cells removed, `show_doc` cells added after exported definitions and executed, nbdev directives
   stripped, backticked names linked to their docs). Each notebook is processed in its own process, as nbdev does;
3. the Quarto cell options left in place for Quarto (`#| echo: false`, `#| output: false|asis`,
   `#| include: false`, `#| code-fold`, ...) are translated into nbconvert cell tags and the `#|` lines removed,
   Quarto `:::` fences are dropped from markdown, and the front-matter title/summary become the page heading;
4. `nbconvert`'s HTML exporter (lab template) writes one self-contained page per chapter from the *stored* outputs
   (nothing is re-executed; figures are embedded as base64 data URIs), named as on the Quarto site
   (`01_data.ipynb` -> `data.html`, `index.ipynb` -> `index.html`). Links into the site are made relative and a
   navigation column lists the chapters in sidebar order on every page. When there is no `index.ipynb` a plain
   `index.html` with the chapter list is written. `manifest.json` lists the chapters rendered.

Usage (from the repository root):

    python scripts/render_docs.py                         # -> _html/
    python scripts/render_docs.py --out /tmp/site         # another folder
    python scripts/render_docs.py --screenshots _html/shots   # also one PNG per chapter (headless Chromium)
    python scripts/render_docs.py --only 01_data.ipynb    # some chapters only

Math is typeset in the browser by KaTeX, copied from a package into the site (`_static/katex/`), never from a CDN:
Debian's `libjs-katex` (`apt-get install -y libjs-katex`, found in /usr/share/javascript/katex), npm's `katex`
(`node_modules/katex/dist`), or any folder given by `--katex-dir` / $KATEX_DIR that holds `katex.min.js`,
`katex.min.css`, `contrib/auto-render*.js` and `fonts/`. Rendering fails when no KaTeX is found. Page titles
(`<title>`) get a plain-text version of their math. Every page also gets: a search box over a client-side index of
all pages (`_static/search_index.js`, works from `file://`), an on-page table of contents, previous/next links in
sidebar order, styled fenced code blocks, and long lines that wrap (outputs) or scroll (code) instead of being cut.
Quarto cross-references are rendered as Quarto does: `$$...$$ {#eq-name}` is numbered (`\tag`), a code cell
with `#| label: fig-name` and `#| fig-cap: "..."` gets the caption "Figure N: ..." under its figure, and `@eq-name` /
`@fig-name` become links "Equation N" / "Figure N" (numbered per page).
API entries that nbdev documents twice (an explicit `show_doc` next to the one nbdev adds) are shown once, and
markdown links inside `show_doc` parameter comments become real links.
The exit status is non-zero when a notebook fails to render (or, with `--strict`, when the sidebar lists a missing
notebook).
"""
import argparse, glob, html, json, multiprocessing as mp, os, re, shutil, subprocess, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync', '--hide-scrollbars', '--mute-audio']

# ---------------------------------------------------------------------------------------------- chapters / sidebar
def html_name(nb_name):
    "The page name Quarto/nbdev give a notebook: drop the `NN_` prefix, lower case, `.html`."
    return re.sub(r'^\d+[a-zA-Z0-9]*_', '', Path(nb_name).name.lower()).rsplit('.', 1)[0] + '.html'

def _walk_sidebar(contents, section, out):
    if isinstance(contents, (str, dict)): contents = [contents]
    for it in contents or []:
        if isinstance(it, str):
            if it != 'auto': out.append((section, it))
        elif isinstance(it, dict):
            if 'href' in it: out.append((it.get('section', section), it['href']))
            inner = it.get('section')                         # a nested section shows its parent: 'Appendix: Data'
            inner = f'{section}: {inner}' if inner and section else inner or section
            if 'contents' in it: _walk_sidebar(it['contents'], inner, out)

def sidebar_entries(nbs):
    "`[(section or None, path)]` in the order of `nbs/sidebar.yml`, or None when there is no sidebar."
    p = Path(nbs)/'sidebar.yml'
    if not p.exists(): return None
    import yaml
    d = yaml.safe_load(p.read_text(encoding='utf-8')) or {}
    sb = (d.get('website') or {}).get('sidebar') or {}
    out = []
    for s in (sb if isinstance(sb, list) else [sb]): _walk_sidebar(s.get('contents', []), None, out)
    return out

def chapters(nbs):
    "`(entries, missing)`: existing notebook chapters `[(section, Path)]` in docs order, and sidebar entries not found."
    nbs = Path(nbs)
    ents = sidebar_entries(nbs)
    if ents is None:
        files = sorted(nbs.glob('*.ipynb'), key=lambda p: (p.name != 'index.ipynb', p.name))
        return [(None, p) for p in files], []
    found, missing = [], []
    for sec, rel in ents:
        p = nbs/rel
        if p.suffix not in ('.ipynb', '.md'): continue       # a .md page (e.g. BENCHMARKS.md) renders as one cell
        (found if p.exists() else missing).append((sec, p))
    return found, [str(p.relative_to(nbs)) for _, p in missing]

def md_page(path, folder) -> Path:
    "A markdown page of the sidebar (a file, or a link to one outside nbs/) as a one-cell notebook in `folder`."
    import nbformat
    folder.mkdir(parents=True, exist_ok=True)
    text = Path(path).read_text(encoding='utf-8')
    m = re.search(r'^#\s+\S.*$', text, flags=re.M)      # nbdev takes the title from a cell of its own
    parts = [text[:m.end()], text[m.end():]] if m else [text]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(t.strip()) for t in parts if t.strip()])
    dest = folder/(Path(path).stem + '.ipynb')
    dest.write_text(nbformat.writes(nb), encoding='utf-8')
    return dest

def nb_title(path):
    "Title and summary of a notebook, from raw front matter or its `# Title` / `> summary` markdown cell."
    nb = json.loads(Path(path).read_text(encoding='utf-8'))
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'raw' and src.strip().startswith('---'):
            import yaml
            fm = yaml.safe_load(src.strip().strip('-')) or {}
            if 'title' in fm: return str(fm['title']), str(fm.get('description', ''))
        if c['cell_type'] == 'markdown':
            m = re.search(r'^#\s+(\S.*?)\s*$', src, flags=re.M)
            if m:
                d = re.search(r'^>\s+(\S.*?)\s*$', src, flags=re.M)
                return m.group(1), d.group(1) if d else ''
    return Path(path).stem, ''

# ---------------------------------------------------------------------------------------------- one notebook
_re_qopt = re.compile(r'^\s*#\s*\|\s*([\w-]+)\s*:\s*(.*?)\s*$')
_re_dir = re.compile(r'^\s*#\s*\|')

def _quarto_options(cell):
    """Strip leading `#|` lines from a code cell; return the Quarto `key: value` options found there (values in lower
    case; the values as written are kept in `cell.metadata['il_quarto']`, e.g. for `fig-cap`)."""
    lines = cell.source.splitlines()
    opts, raw, i = {}, {}, 0
    while i < len(lines) and (_re_dir.match(lines[i]) or not lines[i].strip()):
        m = _re_qopt.match(lines[i])
        if m:
            v = m.group(2)
            if len(v) >= 2 and v[0] == v[-1] and v[0] in '"\'': v = v[1:-1]
            opts[m.group(1)], raw[m.group(1)] = v.lower(), v
        i += 1
    cell.source = '\n'.join(lines[i:])
    if raw: cell.metadata['il_quarto'] = raw
    return opts

# ---------------------------------------------------------------------------------------------- cross-references
_re_eq_label = re.compile(r'\$\$(?P<tex>(?:(?!\$\$).)+?)\$\$[ \t]*\{#(?P<label>eq-[\w-]*\w)\}', re.S)
_re_xref = re.compile(r'\[@((?:eq|fig)-[\w-]*\w)\]|(?<![\w@/.-])@((?:eq|fig)-[\w-]*\w)')

def _outside_code(md, fn):
    "Apply `fn` to the parts of markdown `md` that are not fenced code blocks or code spans."
    parts = re.split(r'(```.*?```|`[^`\n]*`)', md, flags=re.S)
    return ''.join(p if i % 2 else fn(p) for i, p in enumerate(parts))

def _has_image(cell):
    return any(k.startswith('image/') for o in cell.get('outputs', []) for k in o.get('data', {}))

def _cap_html(cap):
    "A figure caption as HTML: escaped, with its `code spans` as <code> (its $math$ is typeset by KaTeX on the page)."
    return re.sub(r'`([^`]+)`', r'<code>\1</code>', html.escape(cap, quote=False))

def number_crossrefs(nb):
    """Quarto's cross-references, for the pages this script writes: display equations `$$...$$ {#eq-name}` are
    numbered in page order (KaTeX shows the number with `\\tag{N}`, an anchor `#eq-name` precedes them); code cells
    with `#| label: fig-name` and `#| fig-cap: "..."` get a caption "Figure N: ..." (anchor `#fig-name`) under their
    output; `@eq-name` / `@fig-name` (or `[@eq-name]`) become links "Equation N" / "Figure N", as Quarto writes them.
    Runs after `_translate_quarto` (which keeps the options as written in `metadata['il_quarto']`).
    Returns `(labels, unresolved)`: `{label: number}` and the references that name no label of the page."""
    import nbformat
    eqs, figs, unresolved = {}, {}, []
    def eq(m):
        lab = m.group('label'); n = eqs.setdefault(lab, len(eqs) + 1)
        return f'<span id="{lab}" class="il-eq-anchor"></span>$${m.group("tex").rstrip()} \\tag{{{n}}}$$'
    cells = []
    for c in nb.cells:
        if c.cell_type == 'markdown': c.source = _outside_code(c.source, lambda p: _re_eq_label.sub(eq, p))
        cells.append(c)
        q = c.metadata.get('il_quarto', {}) if c.cell_type == 'code' else {}
        lab, cap = q.get('label', ''), q.get('fig-cap', '')
        if lab.startswith('fig-') and cap and _has_image(c) and 'il_remove_output' not in c.metadata.get('tags', []):
            n = figs.setdefault(lab, len(figs) + 1)
            cap_cell = nbformat.v4.new_markdown_cell(f'<div class="il-figcap" id="{lab}"><span class="il-figcap-num">'
                                                     f'Figure {n}:</span> {_cap_html(cap)}</div>')
            cap_cell['id'] = f'il-cap-{lab}'
            cells.append(cap_cell)
    nb.cells = cells
    def ref(m, as_html=False):
        lab = m.group(1) or m.group(2)
        kind, n = ('Equation', eqs.get(lab)) if lab.startswith('eq-') else ('Figure', figs.get(lab))
        if n is None: unresolved.append(lab); return m.group(0)
        # a markdown link in markdown (mistune mangles inline <a> tags), an HTML link inside the caption's HTML block
        return f'<a class="il-xref" href="#{lab}">{kind}&nbsp;{n}</a>' if as_html else f'[{kind}\u00a0{n}](#{lab})'
    sub = lambda p: _re_xref.sub(ref, p)
    sub_html = lambda p: _re_xref.sub(lambda m: ref(m, True), p)
    for c in nb.cells:
        if c.cell_type == 'markdown':
            c.source = _outside_code(c.source, sub_html if str(c.get('id', '')).startswith('il-cap-') else sub)
        for o in c.get('outputs', []):
            if 'text/markdown' in o.get('data', {}): o.data['text/markdown'] = _outside_code(o.data['text/markdown'], sub)
    return {**eqs, **figs}, unresolved

_re_link_attrs = re.compile(r'\[([^\]\n]*)\]\(([^)\s]*)\)\{[^}\n]*\}')  # [text](url){target="_blank" ...}

_re_details = re.compile(r'(?s)<details>\s*<summary>(.*?)</summary>(.*?)</details>')

def _details_html(m):
    "A <details> block whose markdown body is rendered in place (math left for KaTeX), on lines without blanks."
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    body = markdown2html_mistune(m.group(2).strip())
    return f'<details><summary>{m.group(1)}</summary>' + re.sub(r'\n\s*\n', '\n', body) + '</details>'

def _md_fix(md):
    "Markdown that mistune would show verbatim: pandoc link attributes (show_doc's source link) and `:::` fences."
    md = _re_link_attrs.sub(r'[\1](\2)', md)
    md = _re_details.sub(_details_html, md)
    return '\n'.join(l for l in md.splitlines() if not l.lstrip().startswith(':::'))

def _translate_quarto(nb):
    "Quarto cell options -> nbconvert tags; drop the front-matter cell and `:::` fences. Returns front matter."
    import yaml
    fm, cells = {}, []
    for c in nb.cells:
        if c.cell_type == 'raw' and c.source.strip().startswith('---') and not fm:
            fm = yaml.safe_load(c.source.strip().strip('-')) or {}
            continue
        if c.cell_type == 'markdown': c.source = _md_fix(c.source)
        for o in c.get('outputs', []):
            if 'text/markdown' in o.get('data', {}): o.data['text/markdown'] = _md_fix(o.data['text/markdown'])
        if c.cell_type == 'code':
            o = _quarto_options(c)
            tags = set(c.metadata.get('tags', []))
            if o.get('include') == 'false': continue
            if o.get('echo') == 'false' or not c.source.strip(): tags.add('il_remove_input')
            if o.get('output') == 'false': tags.add('il_remove_output')
            if o.get('code-fold') in ('true', 'show'): tags.add('il_fold' if o['code-fold'] == 'true' else 'il_fold_open')
            if not c.source.strip() and not c.get('outputs'): continue
            c.metadata['tags'] = sorted(tags)
        cells.append(c)
    nb.cells = cells
    return fm

_NAV_CSS = """<style id="il-nav-css">
body{margin:0;padding-left:17rem!important;padding-right:15rem!important}
nav.il-nav{position:fixed;top:0;left:0;bottom:0;width:15.5rem;overflow-y:auto;padding:1rem .9rem;box-sizing:border-box;
 border-right:1px solid #ddd;background:#f7f7f9;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
nav.il-nav .il-site{display:block;font-weight:700;font-size:16px;margin-bottom:.6rem;color:#2c3e50;text-decoration:none}
nav.il-nav .il-sec{margin:.9rem 0 .25rem;font-weight:600;color:#555;text-transform:uppercase;font-size:12px}
nav.il-nav a{color:#2780e3;text-decoration:none}
nav.il-nav li{list-style:none;margin:.2rem 0}
nav.il-nav ul{padding-left:.2rem;margin:0}
nav.il-nav a.il-current{font-weight:700;color:#111}
#il-search{width:100%;box-sizing:border-box;padding:.3rem .45rem;margin:0 0 .5rem;border:1px solid #bbb;border-radius:4px;font:inherit}
#il-search-results{margin:0 0 .6rem;padding:0}
#il-search-results li{margin:.35rem 0;font-size:13px}
#il-search-results .il-hit-page{color:#777;font-size:11px;display:block}
#il-search-results .il-hit-snip{color:#444;font-size:12px;display:block}
nav.il-toc{position:fixed;top:0;right:0;bottom:0;width:13.5rem;overflow-y:auto;padding:1rem .8rem;box-sizing:border-box;
 border-left:1px solid #eee;font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif}
nav.il-toc .il-toc-title{font-weight:600;color:#555;margin-bottom:.4rem}
nav.il-toc ul{padding-left:0;margin:0}
nav.il-toc li{list-style:none;margin:.25rem 0}
nav.il-toc li.il-toc-3{padding-left:.9rem;font-size:12px}
nav.il-toc a{color:#2780e3;text-decoration:none}
.il-pager{display:flex;justify-content:space-between;gap:1rem;margin:2.5rem 0 2rem;padding-top:1rem;border-top:1px solid #ddd}
.il-pager a{text-decoration:none;color:#2780e3;max-width:48%}
.il-pager .il-next{margin-left:auto;text-align:right}
.il-pager small{display:block;color:#777}
.il-source{float:right;font-size:smaller}
.il-description{font-size:1.15em;color:#555;margin:-.3rem 0 1.2rem}
/* fenced code blocks in prose: a box of their own, with space before the next paragraph */
.jp-RenderedMarkdown pre{background:#f6f8fa;border:1px solid #e3e6ea;border-radius:4px;padding:.6em .8em;margin:.4em 0 1em;
 overflow-x:auto;white-space:pre}
.jp-RenderedMarkdown pre code{background:none;padding:0;font-size:inherit}
.jp-RenderedMarkdown :not(pre)>code{background:#f3f3f5;padding:.05em .25em;border-radius:3px}
/* long lines: code scrolls, text output wraps; nothing is cut off at the right edge */
.jp-InputArea-editor pre,.highlight pre,.jp-RenderedMarkdown .highlight pre{overflow-x:auto;white-space:pre;max-width:100%}
.jp-OutputArea-output pre,.jp-RenderedText pre{white-space:pre-wrap;overflow-wrap:anywhere;overflow-x:auto}
.jp-OutputArea-output,.jp-Cell-inputWrapper,.jp-InputArea,.jp-InputArea-editor,.jp-OutputArea{overflow:visible;min-width:0}
.jp-RenderedHTMLCommon table{display:block;overflow-x:auto;max-width:100%}
.jp-Cell,.jp-Notebook{min-width:0;max-width:100%}
.katex-display{overflow-x:auto;overflow-y:hidden;padding:.2em 0}
/* an equation number sits after its equation, never on it: the row is a flex line, the tag a normal item */
.katex-display>.katex>.katex-html{display:flex;align-items:baseline;white-space:nowrap}
.katex-display>.katex>.katex-html::before{content:'';flex:1}
.katex-display>.katex>.katex-html>.tag{position:static;margin-left:auto;padding-left:1.5em}
.il-figcap{margin:.2em 0 1.4em;color:#444;font-size:.95em;text-align:center}.il-figcap-num{font-weight:600}
a.il-xref{white-space:nowrap}
@media (max-width:1200px){body{padding-right:0!important}nav.il-toc{display:none}}
@media (max-width:900px){body{padding-left:0!important}nav.il-nav{position:static;width:auto;border-right:0}}
</style>"""

_SEARCH_JS = r"""(function(){
function esc(s){return s.replace(/[&<>"]/g,function(c){return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]})}
function run(q){var box=document.getElementById('il-search-results');if(!box)return 0;box.innerHTML='';
 var idx=window.IL_SEARCH||[];var terms=q.toLowerCase().split(/\s+/).filter(function(t){return t.length>1});
 if(!terms.length)return 0;var hits=[];
 idx.forEach(function(e){var hay=(e.h+' '+e.x).toLowerCase(),head=(e.t+' '+e.h).toLowerCase(),s=0;
  for(var i=0;i<terms.length;i++){var k=hay.indexOf(terms[i]);if(k<0&&head.indexOf(terms[i])<0)return;
   s+=(head.indexOf(terms[i])>=0?5:0)+(k>=0?1:0)}hits.push([s,e])});
 hits.sort(function(a,b){return b[0]-a[0]});
 hits.slice(0,15).forEach(function(h){var e=h[1],x=e.x,k=x.toLowerCase().indexOf(terms[0]),
  snip=k<0?x.slice(0,90):(k>40?'…':'')+x.slice(Math.max(0,k-40),k+80)+'…';
  var li=document.createElement('li');li.className='il-hit';
  li.innerHTML='<a href="'+e.p+(e.a?'#'+e.a:'')+'">'+esc(e.h||e.t)+'</a><span class="il-hit-page">'+esc(e.t)+
   '</span><span class="il-hit-snip">'+esc(snip)+'</span>';box.appendChild(li)});
 if(!hits.length)box.innerHTML='<li class="il-nohit">No match.</li>';return hits.length}
window.ilSearch=run;
document.addEventListener('DOMContentLoaded',function(){var i=document.getElementById('il-search');if(!i)return;
 i.addEventListener('input',function(){run(i.value)});
 var q=new URLSearchParams(location.search).get('q');if(q){i.value=q;run(q)}});
})();
"""

_KATEX_CALL = """<script>(function(){function go(){if(!window.renderMathInElement)return;window.__ilKatexErrors=[];
renderMathInElement(document.body,{delimiters:[{left:'$$',right:'$$',display:true},{left:'$',right:'$',display:false},
{left:'\\\\(',right:'\\\\)',display:false},{left:'\\\\[',right:'\\\\]',display:true},
{left:'\\\\begin{equation}',right:'\\\\end{equation}',display:true},{left:'\\\\begin{align}',right:'\\\\end{align}',display:true},
{left:'\\\\begin{aligned}',right:'\\\\end{aligned}',display:true}],
ignoredTags:['script','noscript','style','textarea','pre','code','option','input'],throwOnError:false,
errorCallback:function(m,e){window.__ilKatexErrors.push(m+' '+e)}})}
go();})();</script>"""

def find_katex(katex_dir=None):
    "Folder of a packaged KaTeX (`katex.min.js`, `katex.min.css`, `contrib/auto-render*.js`, `fonts/`), or None."
    cands = [katex_dir] if katex_dir else [os.environ.get('KATEX_DIR'), '/usr/share/javascript/katex',
                                            str(REPO/'node_modules'/'katex'/'dist'), '/usr/share/nodejs/katex/dist']
    for c in cands:
        if c and (Path(c)/'katex.min.css').exists() and ((Path(c)/'katex.min.js').exists() or (Path(c)/'katex.js').exists()):
            return Path(c)
    return None

def copy_katex(src, out):
    "Copy KaTeX (script, stylesheet, auto-render, fonts; symlinks followed) into `out/_static/katex`."
    dst = Path(out)/'_static'/'katex'
    (dst/'contrib').mkdir(parents=True, exist_ok=True); (dst/'fonts').mkdir(exist_ok=True)
    js = src/'katex.min.js' if (src/'katex.min.js').exists() else src/'katex.js'
    shutil.copyfile(js, dst/'katex.min.js'); shutil.copyfile(src/'katex.min.css', dst/'katex.min.css')
    ar = [src/'contrib'/n for n in ('auto-render.min.js', 'auto-render.js') if (src/'contrib'/n).exists()]
    if not ar: raise FileNotFoundError(f'{src}/contrib/auto-render.js not found')
    shutil.copyfile(ar[0], dst/'contrib'/'auto-render.min.js')
    for f in (src/'fonts').iterdir():
        if f.suffix in ('.woff2', '.woff', '.ttf'): shutil.copyfile(f, dst/'fonts'/f.name)
    return dst

_TEX_TEXT = {r'\to': '→', r'\rightarrow': '→', r'\leftarrow': '←', r'\approx': '≈', r'\times': '×', r'\le': '≤',
             r'\ge': '≥', r'\mu': 'μ', r'\sigma': 'σ', r'\alpha': 'α', r'\beta': 'β', r'\theta': 'θ', r'\lambda': 'λ',
             r'\epsilon': 'ε', r'\varepsilon': 'ε', r'\phi': 'φ', r'\ell': 'ℓ', r'\cdot': '·', r'\sum': 'Σ', r'\top': 'ᵀ',
             r'\log': 'log', r'\exp': 'exp', r'\gamma': 'γ', r'\delta': 'δ', r'\kappa': 'κ', r'\pi': 'π',
             r'\rho': 'ρ', r'\odot': '⊙', r'\infty': '∞', r'\ne': '≠'}
_TEX_DROP = {'mathbb', 'mathcal', 'texttt', 'big', 'Big', 'bigg', 'Bigg', 'left', 'right', 'boxed', 'underbrace',
             'overline', 'hat', 'tilde', 'frac', 'sqrt', 'textstyle', 'quad', 'qquad'}   # layout: no text of its own

def tex_to_text(s):
    "Plain-text version of a string with `$...$` math, for places where nothing typesets (`<title>`)."
    def one(m):
        t = m.group(1)
        t = re.sub(r'\\(?:text|mathrm|mathbf|mathit|operatorname|boldsymbol)\s*\{([^{}]*)\}', r'\1', t)
        t = re.sub(r'\\[A-Za-z]+',
                   lambda k: _TEX_TEXT.get(k.group(0), '' if k.group(0)[1:] in _TEX_DROP else k.group(0)[1:]), t)
        return re.sub(r'\s+', ' ', t.replace('{', '').replace('}', '').replace('\\', '')).strip()
    return re.sub(r'\$\$?(.+?)\$?\$', one, s)

def nav_html(site_title, toc, current):
    "Navigation column: site title, search box, and `toc` (`[(section, href, title)]`) in sidebar order."
    out, sec = [f'<nav class="il-nav" aria-label="Chapters"><a class="il-site" href="index.html">'
                f'{html.escape(site_title)}</a><input id="il-search" type="search" placeholder="Search" '
                f'aria-label="Search the documentation" autocomplete="off"><ul id="il-search-results"></ul><ul>'], object()
    for s, href, title in toc:
        if s != sec:
            if s: out.append(f'</ul><div class="il-sec">{html.escape(s)}</div><ul>')
            sec = s
        cls = ' class="il-current"' if href == current else ''
        out.append(f'<li><a href="{href}"{cls}>{html.escape(title)}</a></li>')
    out.append('</ul></nav>')
    return ''.join(out)

def pager_html(toc, current):
    "Previous/next links in sidebar order."
    hrefs = [h for _, h, _ in toc]
    if current not in hrefs: return ''
    i, parts = hrefs.index(current), []
    if i > 0:
        parts.append(f'<a class="il-prev" rel="prev" href="{toc[i-1][1]}"><small>← Previous</small>{html.escape(toc[i-1][2])}</a>')
    if i + 1 < len(toc):
        parts.append(f'<a class="il-next" rel="next" href="{toc[i+1][1]}"><small>Next →</small>{html.escape(toc[i+1][2])}</a>')
    return f'<nav class="il-pager" aria-label="Previous and next chapter">{"".join(parts)}</nav>' if parts else ''

_re_heading = re.compile(r'(?s)<h([1-6]) id="([^"]+)"([^>]*)>(.*?)</h\1>')

def _strip_tags(h): return re.sub(r'\s+', ' ', html.unescape(re.sub(r'(?s)<[^>]+>', ' ', h))).strip()

def page_toc_html(body):
    "On-page table of contents from the page's h2/h3 headings (after the navigation column)."
    items = []
    for lvl, hid, _, inner in _re_heading.findall(body):
        if lvl not in ('2', '3'): continue
        inner = re.sub(r'<a class="anchor-link".*?</a>', '', inner)
        txt = _strip_tags(inner)
        if txt: items.append(f'<li class="il-toc-{lvl}"><a href="#{hid}">{html.escape(txt)}</a></li>')
    if not items: return ''
    return f'<nav class="il-toc" aria-label="On this page"><div class="il-toc-title">On this page</div><ul>{"".join(items)}</ul></nav>'

def _api_heading_spans(body):
    "Spans of the headings of show_doc blocks (a `<hr/>`, an optional source link, then the heading)."
    return {m.start(1) for m in re.finditer(r'(?s)<hr/>\s*(?:<p class="il-source">.*?</p>\s*)?(<h[1-6] id=")', body)}

def unique_heading_ids(body):
    "Make heading ids unique: an API entry keeps its id (doc links point there); another heading with that id gets `-N`."
    api_starts = _api_heading_spans(body)
    api_ids = {m.group(2) for m in _re_heading.finditer(body) if m.start() in api_starts}
    seen, out, last = {}, [], 0
    for m in _re_heading.finditer(body):
        lvl, hid, rest, inner = m.groups()
        is_api = m.start() in api_starts
        new = hid
        if hid in seen or (hid in api_ids and not is_api):
            n = 1
            while f'{hid}-{n}' in seen or f'{hid}-{n}' in api_ids: n += 1
            new = f'{hid}-{n}'
        seen[new] = True
        if new != hid: inner = inner.replace(f'href="#{hid}"', f'href="#{new}"')
        out.append(body[last:m.start()] + f'<h{lvl} id="{new}"{rest}>{inner}</h{lvl}>'); last = m.end()
    return ''.join(out) + body[last:]

def _comment_links(body):
    "Markdown links (`[`name`](url)`) inside highlighted code comments (show_doc parameter docs) -> HTML links."
    def fix(m):
        inner = re.sub(r'\[`?([^\]`]+)`?\]\(([^)\s]+)\)', lambda k: f'<a href="{k.group(2)}"><code>{k.group(1)}</code></a>',
                       m.group(2))
        return m.group(1) + inner + m.group(3)
    return re.sub(r'(?s)(<span class="c1">)(.*?)(</span>)', fix, body)

def _drop_cdn(body):
    "Remove nbconvert's CDN scripts (require.js, MathJax and its configuration, mermaid loader): the site is offline."
    body = re.sub(r'(?s)<script[^>]*\bsrc="https?://[^"]*"[^>]*>\s*</script>', '', body)
    body = re.sub(r'(?s)<!-- MathJax configuration -->\s*<script type="text/x-mathjax-config">.*?</script>', '', body)
    body = re.sub(r'(?s)<script type="text/x-mathjax-config">.*?</script>', '', body)
    body = re.sub(r'(?is)<!--[^>]*?mathjax[^>]*?-->', '', body)
    body = re.sub(r'(?s)<script type="module">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*</script>', '', body)
    return body

# Quarto's `#| code-fold: true` (or `show`): the cell's code goes into a <details> whose summary reads "Code"
_FOLD_JS = """<script>document.querySelectorAll('.celltag_il_fold, .celltag_il_fold_open').forEach(function(c){
var w=c.querySelector('.jp-Cell-inputWrapper');if(!w)return;var d=document.createElement('details');
d.className='il-fold';d.open=c.classList.contains('celltag_il_fold_open');var s=document.createElement('summary');
s.textContent='Code';d.appendChild(s);w.parentNode.insertBefore(d,w);d.appendChild(w);});</script>
"""

def decorate(body, page, site_title, toc, title):
    "Site chrome for one page: CSS, KaTeX, navigation with search, on-page TOC, previous/next links."
    body = _drop_cdn(body)
    body = re.sub(r'(?s)<title>.*?</title>', f'<title>{html.escape(tex_to_text(title))}</title>', body, count=1)
    head = (_NAV_CSS + '\n<link rel="stylesheet" href="_static/katex/katex.min.css">'
            '\n<script src="_static/katex/katex.min.js"></script>'
            '\n<script src="_static/katex/contrib/auto-render.min.js"></script>'
            '\n<script src="_static/search_index.js"></script>\n<script src="_static/search.js"></script>\n')
    body = body.replace('</head>', head + '</head>', 1)
    body = body.replace('</body>', _FOLD_JS + '</body>', 1)
    body = re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + nav_html(site_title, toc, page) + page_toc_html(body), body,
                  count=1)
    body = body.replace('</body>', pager_html(toc, page) + _KATEX_CALL + '\n</body>', 1)
    return body

def _site_prefixes():
    from nbdev.config import get_config
    cfg = get_config()
    host, base = cfg.get('doc_host', '').rstrip('/'), cfg.get('doc_baseurl', '').strip('/')
    return [f'{host}/{base}/' if base else f'{host}/'] if host else []

def _show_doc_key(cell):
    "Heading of the API entry a show_doc output cell shows (`'InterestVAE.forward'`), or None."
    if cell.cell_type != 'code' or 'show_doc' not in cell.source: return None
    for o in cell.get('outputs', []):
        md = o.get('data', {}).get('text/markdown', '')
        m = re.search(r'^#{2,4}\s+(\S+)', md, flags=re.M)
        if m: return m.group(1)
    return None

def dedupe_show_docs(nb):
    "Keep the first show_doc block of each API entry (nbdev adds one after an exported def, a notebook may add another)."
    seen, cells = set(), []
    for c in nb.cells:
        k = _show_doc_key(c)
        if k is not None and k in seen: continue
        if k is not None: seen.add(k)
        cells.append(c)
    nb.cells = cells

def render_one(nb_path, out_file, site_title, toc):
    "Process one notebook with nbdev's docs processors and write it as HTML; returns a summary dict."
    t0 = time.time()
    os.chdir(REPO)  # nbdev reads settings.ini from the working directory upwards
    import nbformat, warnings
    from execnb.nbio import read_nb, nb2str
    from nbdev.processors import FilterDefaults
    from nbconvert import HTMLExporter
    from traitlets.config import Config
    os.environ['IN_TEST'] = '1'  # as nbdev's docs driver does
    nb = read_nb(nb_path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        FilterDefaults()(nb)
    for i, c in enumerate(nb.cells):  # cells added by the processors have no id
        if not c.get('id'): c['id'] = f'il-{i:03d}'
    nb = nbformat.reads(nb2str(nb), as_version=4)
    dedupe_show_docs(nb)
    fm = _translate_quarto(nb)
    labels, unresolved = number_crossrefs(nb)
    if unresolved: print(f'warning: {Path(nb_path).name}: cross-references to no label of the page: {sorted(set(unresolved))}')
    title, desc = str(fm.get('title') or Path(nb_path).stem), str(fm.get('description') or '')
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    head = f'# {title}' + (f'\n\n<div class="il-description">{markdown2html_mistune(desc)}</div>' if desc else '')
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(head))
    nb.metadata['title'] = title
    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_input_tags = {'il_remove_input'}
    c.TagRemovePreprocessor.remove_all_outputs_tags = {'il_remove_output'}
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    c.HTMLExporter.embed_images = True
    exp = HTMLExporter(config=c, template_name='lab')
    body, _ = exp.from_notebook_node(nb, resources={'metadata': {'path': str(Path(nb_path).parent), 'name': title}})
    body = _comment_links(body)
    for pre in _site_prefixes():  # links into the docs site -> relative links between the rendered pages
        body = body.replace(f'href="{pre}', 'href="')
    # show_doc's source link floats right, opening a new tab, as on the Quarto site
    body = re.sub(r'<p><a href="([^"]+)">source</a></p>', r'<p class="il-source"><a href="\1" target="_blank">source</a></p>', body)
    # links to notebooks -> their pages (as Quarto does)
    body = re.sub(r'href="([^":/?#]+)\.ipynb(#[^"]*)?"', lambda m: f'href="{html_name(m.group(1))}{m.group(2) or ""}"', body)
    # heading anchors in lower case, as Quarto makes them (nbdev's doc links use `page.html#name_in_lower_case`)
    body = re.sub(r'(<h[1-6] id=")([^"]+)(">)(.*?)(<a class="anchor-link" href="#)([^"]+)"',
                  lambda m: m.group(1) + m.group(2).lower() + m.group(3) + m.group(4) + m.group(5) + m.group(6).lower() + '"',
                  body)
    body = unique_heading_ids(body)
    body = decorate(body, Path(out_file).name, site_title, toc, title)
    Path(out_file).write_text(body, encoding='utf-8')
    return dict(notebook=str(Path(nb_path).relative_to(REPO)) if Path(nb_path).is_relative_to(REPO) else str(nb_path),
                html=Path(out_file).name, title=title, description=desc, seconds=round(time.time() - t0, 2),
                crossrefs=labels, unresolved_refs=sorted(set(unresolved)))

_EXEC_HINT = ('\n  (nbdev_docs runs, out of order, every cell that contains an import statement, besides exported and'
              ' show_doc cells: keep imports in cells of their own.)')

def _render_job(args):
    t0, main = time.time(), sys.modules.get('__main__')  # nbdev's show_doc shell (IPython) replaces __main__; put it back afterwards
    try: return render_one(*args)
    except BaseException as e:
        import traceback
        err = f'{type(e).__name__}: {e}'
        if e.__cause__ is not None: err += f'\n  caused by {type(e.__cause__).__name__}: {e.__cause__}'
        if 'Error in notebook' in str(e): err += _EXEC_HINT
        return dict(notebook=str(args[0]), html=Path(args[1]).name, error=err, traceback=traceback.format_exc(),
                    seconds=round(time.time() - t0, 2))
    finally:
        if main is not None: sys.modules['__main__'] = main

def _job_fn():
    "`_render_job` from an importable module (`render_docs`), so that spawned workers can always unpickle it."
    if __name__ == 'render_docs': return _render_job
    sys.path.insert(0, str(REPO/'scripts'))
    import render_docs
    return render_docs._render_job

def _plain_page(site_title, toc, page, title, main_html):
    body = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
            f'<body><main>{main_html}</main></body></html>')
    return decorate(body, page, site_title, toc, title)

def error_page(site_title, toc, r, title):
    "Page written in place of a chapter that failed to render (so the other pages' links still lead somewhere)."
    return _plain_page(site_title, toc, r['html'], title,
                       f'<h1>{html.escape(title)}</h1><p class="il-render-error">This chapter could not be rendered from '
                       f'{html.escape(r["notebook"])}:</p><pre>{html.escape(r["error"])}</pre>')

def index_page(site_title, toc, summaries):
    "A plain `index.html` listing the chapters (used when there is no index.ipynb)."
    items, sec = [], object()
    for s, href, title in toc:
        if s != sec and s: items.append(f'<h2 id="{html.escape(s.lower())}">{html.escape(s)}</h2>')
        sec = s
        items.append(f'<p><a href="{href}">{html.escape(title)}</a> &mdash; {html.escape(summaries.get(href, ""))}</p>')
    return _plain_page(site_title, toc, 'index.html', site_title, f'<h1>{html.escape(site_title)}</h1>' + ''.join(items))

def plain_math(txt:str) -> str:
    "Search text without raw TeX: display math dropped, inline math as `tex_to_text` writes it (\\mu_t -> μ_t)."
    return re.sub(r'\s+', ' ', tex_to_text(re.sub(r'(?s)\$\$.*?\$\$|\\\[.*?\\\]', ' ', txt))).strip()

def search_entries(page, h):
    "Search-index records of one rendered page: one per h1-h3 section `{p, a, t, h, x}` (page, anchor, title, heading, text)."
    h = re.sub(r'(?is)<(script|style)\b.*?</\1>', ' ', h)
    h = re.sub(r'(?s)<nav\b.*?</nav>', ' ', h)
    h = re.sub(r'(?s)<math\b.*?</math>', ' ', h)
    tm = re.search(r'(?s)<title>(.*?)</title>', h)
    title = _strip_tags(tm.group(1)) if tm else page
    body = h.split('<body', 1)[-1]
    heads = [m for m in _re_heading.finditer(body) if m.group(1) in '123']
    out, starts = [], [(None, '', 0)] + [(m.group(2), m.group(4), m.end()) for m in heads]
    ends = [m.start() for m in heads] + [len(body)]
    for (anchor, inner, s), e in zip(starts, ends):
        txt = plain_math(_strip_tags(body[s:e]))
        head = plain_math(_strip_tags(re.sub(r'<a class="anchor-link".*?</a>', '', inner)))
        if txt or head: out.append(dict(p=page, a=anchor or '', t=title, h=head.replace('¶', '').strip(), x=txt[:3000]))
    return out

def write_search(out, pages):
    "The client-side search: `_static/search_index.js` (a script, so it loads from file:// too) and `_static/search.js`."
    st = Path(out)/'_static'; st.mkdir(parents=True, exist_ok=True)
    entries = []
    for p in pages:
        f = Path(out)/p
        if f.exists(): entries += search_entries(p, f.read_text(encoding='utf-8'))
    (st/'search_index.js').write_text('window.IL_SEARCH = ' + json.dumps(entries, ensure_ascii=False) + ';\n', encoding='utf-8')
    (st/'search.js').write_text(_SEARCH_JS, encoding='utf-8')
    return len(entries)

# ---------------------------------------------------------------------------------------------- chromium
def find_chromium():
    "Path of a Chromium/Chrome binary, or None (env `CHROMIUM`, when set, is the only candidate)."
    cands = [os.environ['CHROMIUM']] if os.environ.get('CHROMIUM') else ['/usr/bin/chromium', 'chromium', 'chromium-browser',
                                                                          'google-chrome']
    for c in cands:
        if c and shutil.which(c): return shutil.which(c)
    return None

def chromium(url, *extra, timeout=180, binary=None):
    "Run headless Chromium on `url` with a throwaway profile; returns the CompletedProcess (stdout = text)."
    binary = binary or find_chromium()
    if not binary: raise FileNotFoundError('Chromium not found: apt-get install -y chromium')
    with tempfile.TemporaryDirectory(prefix='il-chromium-') as prof:
        cmd = [binary, *CHROMIUM_FLAGS, f'--user-data-dir={prof}', *extra, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

def screenshot(page, png, size='1280,2000', timeout=180):
    "Screenshot a rendered page (file path or URL) to `png`."
    url = page if re.match(r'^\w+://', str(page)) else Path(page).resolve().as_uri()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    r = chromium(url, f'--screenshot={Path(png).resolve()}', f'--window-size={size}', '--virtual-time-budget=5000',
                 timeout=timeout)
    if not Path(png).exists(): raise RuntimeError(f'no screenshot for {page}: {r.stderr[-500:]}')
    return png

# ---------------------------------------------------------------------------------------------- main
def render_site(nbs=None, out='_html', only=None, workers=None, katex_dir=None, strict=False, log=print):
    "Render the chapters of `nbs` into `out`; returns the manifest dict."
    nbs = Path(nbs or REPO/'nbs').resolve()
    out = Path(out).resolve(); out.mkdir(parents=True, exist_ok=True)
    kx = find_katex(katex_dir)
    if kx is None:
        log('ERROR: KaTeX not found (apt-get install -y libjs-katex, or npm install katex, or --katex-dir DIR): '
            'math cannot be typeset offline')
    else: copy_katex(kx, out)
    found, missing = chapters(nbs)
    found = [(sec, md_page(p, out/'_pages') if p.suffix == '.md' else p) for sec, p in found]
    for m in missing: log(f'warning: sidebar.yml lists {m} but nbs/{m} does not exist')
    listed = {p.resolve() for _, p in found}
    for p in sorted(nbs.glob('*.ipynb')):
        if sidebar_entries(nbs) is not None and p.resolve() not in listed:
            log(f'warning: {p.name} is not listed in sidebar.yml (it will not appear on the Quarto site)')
    try:
        sys.path.insert(0, str(REPO)); os.chdir(REPO)
        from nbdev.config import get_config
        site_title = get_config().get('title', 'Documentation')
    except Exception: site_title = 'Documentation'
    toc = [(sec, html_name(p.name), nb_title(p)[0]) for sec, p in found]
    summaries = {html_name(p.name): nb_title(p)[1] for _, p in found}
    if not any(h == 'index.html' for _, h, _ in toc): toc = [(None, 'index.html', site_title)] + toc
    todo = [(sec, p) for sec, p in found if not only or p.name in only or p.stem in only]
    jobs = [(str(p), str(out/html_name(p.name)), site_title, toc) for _, p in todo]
    t0 = time.time()
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    with ProcessPoolExecutor(workers, mp_context=mp.get_context('spawn')) as ex: results = list(ex.map(_job_fn(), jobs))
    titles = {href: title for _, href, title in toc}
    for r in results:
        if 'error' in r:
            log(f"ERROR rendering {r['notebook']} ({r['seconds']}s): {r['error']}")
            (out/r['html']).write_text(error_page(site_title, toc, r, titles.get(r['html'], r['html'])), encoding='utf-8')
        else: log(f"{r['notebook']} -> {out/r['html']} ({r['seconds']}s)")
    if not any(html_name(p.name) == 'index.html' for _, p in found):
        (out/'index.html').write_text(index_page(site_title, toc, summaries), encoding='utf-8')
        log(f'{out/"index.html"} (chapter list)')
    n = write_search(out, [h for _, h, _ in toc])
    log(f'search index: {n} sections')
    manifest = dict(site_title=site_title, nbs=str(nbs), chapters=results, missing=missing, katex=str(kx) if kx else None,
                    search_sections=n, seconds=round(time.time() - t0, 1))
    (out/'manifest.json').write_text(json.dumps(manifest, indent=1), encoding='utf-8')
    manifest['ok'] = kx is not None and not any('error' in r for r in results) and not (strict and missing)
    return manifest

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--nbs', default=str(REPO/'nbs'), help='notebook folder (default: nbs/)')
    ap.add_argument('--out', default='_html', help='output folder (default: _html/)')
    ap.add_argument('--only', nargs='*', help='render only these notebooks (file names or stems)')
    ap.add_argument('--workers', type=int, default=None, help='processes (default: number of CPUs)')
    ap.add_argument('--katex-dir', default=None,
                    help='packaged KaTeX folder (default: $KATEX_DIR, /usr/share/javascript/katex, node_modules/katex/dist)')
    ap.add_argument('--screenshots', default=None, metavar='DIR', help='also write one PNG per chapter into DIR')
    ap.add_argument('--window-size', default='1280,2000', help='screenshot size (default 1280,2000)')
    ap.add_argument('--strict', action='store_true', help='fail when sidebar.yml lists a missing notebook')
    a = ap.parse_args(argv)
    m = render_site(a.nbs, a.out, a.only, a.workers, a.katex_dir, a.strict)
    if a.screenshots:
        for r in m['chapters']:
            if 'error' in r: continue
            png = Path(a.screenshots)/(Path(r['html']).stem + '.png')
            screenshot(Path(a.out)/r['html'], png, a.window_size)
            print(f'screenshot {png}')
    print(f"{len(m['chapters'])} chapter(s) rendered to {Path(a.out).resolve()} in {m['seconds']}s"
          + (f"; missing from nbs/: {', '.join(m['missing'])}" if m['missing'] else ''))
    return 0 if m['ok'] else 1

if __name__ == '__main__': sys.exit(main())
