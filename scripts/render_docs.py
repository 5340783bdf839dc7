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
   (`00_data.ipynb` -> `data.html`, `index.ipynb` -> `index.html`). Links into the site are made relative and a
   navigation column lists the chapters in sidebar order on every page. When there is no `index.ipynb` a plain
   `index.html` with the chapter list is written. `manifest.json` lists the chapters rendered.

Usage (from the repository root):

    python scripts/render_docs.py                         # -> _html/
    python scripts/render_docs.py --out /tmp/site         # another folder
    python scripts/render_docs.py --screenshots _html/shots   # also one PNG per chapter (headless Chromium)
    python scripts/render_docs.py --only 00_data.ipynb    # some chapters only

Math is typeset by MathJax from its CDN (as nbconvert does); offline, pass `--mathjax-url` to a local copy
(e.g. Debian's libjs-mathjax: `file:///usr/share/javascript/mathjax/MathJax.js?config=TeX-AMS_CHTML`).
The exit status is non-zero when a notebook fails to render (or, with `--strict`, when the sidebar lists a missing
notebook).
"""
import argparse, html, json, multiprocessing as mp, os, re, shutil, subprocess, sys, tempfile, time
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
            if 'contents' in it: _walk_sidebar(it['contents'], it.get('section', section), out)

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
        if p.suffix != '.ipynb': continue
        (found if p.exists() else missing).append((sec, p))
    return found, [str(p.relative_to(nbs)) for _, p in missing]

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
    "Strip leading `#|` lines from a code cell; return the Quarto `key: value` options found there."
    lines = cell.source.splitlines()
    opts, i = {}, 0
    while i < len(lines) and (_re_dir.match(lines[i]) or not lines[i].strip()):
        m = _re_qopt.match(lines[i])
        if m: opts[m.group(1)] = m.group(2).strip('"\'').lower()
        i += 1
    cell.source = '\n'.join(lines[i:])
    return opts

_re_link_attrs = re.compile(r'\[([^\]\n]*)\]\(([^)\s]*)\)\{[^}\n]*\}')  # [text](url){target="_blank" ...}

def _md_fix(md):
    "Markdown that mistune would show verbatim: pandoc link attributes (show_doc's source link) and `:::` fences."
    md = _re_link_attrs.sub(r'[\1](\2)', md)
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
            if not c.source.strip() and not c.get('outputs'): continue
            c.metadata['tags'] = sorted(tags)
        cells.append(c)
    nb.cells = cells
    return fm

_NAV_CSS = """<style id="il-nav-css">
body{margin:0;padding-left:17rem!important}
nav.il-nav{position:fixed;top:0;left:0;bottom:0;width:15.5rem;overflow-y:auto;padding:1rem .9rem;box-sizing:border-box;
 border-right:1px solid #ddd;background:#f7f7f9;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
nav.il-nav .il-site{display:block;font-weight:700;font-size:16px;margin-bottom:.8rem;color:#2c3e50;text-decoration:none}
nav.il-nav .il-sec{margin:.9rem 0 .25rem;font-weight:600;color:#555;text-transform:uppercase;font-size:12px}
nav.il-nav a{color:#2780e3;text-decoration:none}
nav.il-nav li{list-style:none;margin:.2rem 0}
nav.il-nav ul{padding-left:.2rem;margin:0}
nav.il-nav a.il-current{font-weight:700;color:#111}
.il-source{float:right;font-size:smaller}
.il-description{font-size:1.15em;color:#555;margin:-.3rem 0 1.2rem}
@media (max-width:900px){body{padding-left:0!important}nav.il-nav{position:static;width:auto;border-right:0}}
</style>"""

def nav_html(site_title, toc, current):
    "Navigation column: `toc` is `[(section, href, title)]` in sidebar order."
    out, sec = [f'<nav class="il-nav" aria-label="Chapters"><a class="il-site" href="index.html">'
                f'{html.escape(site_title)}</a><ul>'], object()
    for s, href, title in toc:
        if s != sec:
            if s: out.append(f'</ul><div class="il-sec">{html.escape(s)}</div><ul>')
            sec = s
        cls = ' class="il-current"' if href == current else ''
        out.append(f'<li><a href="{href}"{cls}>{html.escape(title)}</a></li>')
    out.append('</ul></nav>')
    return ''.join(out)

def _site_prefixes():
    from nbdev.config import get_config
    cfg = get_config()
    host, base = cfg.get('doc_host', '').rstrip('/'), cfg.get('doc_baseurl', '').strip('/')
    return [f'{host}/{base}/' if base else f'{host}/'] if host else []

def render_one(nb_path, out_file, site_title, toc, mathjax_url=None):
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
    fm = _translate_quarto(nb)
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
    if mathjax_url: c.HTMLExporter.mathjax_url = mathjax_url
    exp = HTMLExporter(config=c, template_name='lab')
    body, _ = exp.from_notebook_node(nb, resources={'metadata': {'path': str(Path(nb_path).parent), 'name': title}})
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
    body = body.replace('</head>', _NAV_CSS + '\n</head>', 1)
    body = re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + nav_html(site_title, toc, Path(out_file).name), body, count=1)
    Path(out_file).write_text(body, encoding='utf-8')
    return dict(notebook=str(Path(nb_path).relative_to(REPO)) if Path(nb_path).is_relative_to(REPO) else str(nb_path),
                html=Path(out_file).name, title=title, description=desc, seconds=round(time.time() - t0, 2))

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
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import render_docs
    return render_docs._render_job

def error_page(site_title, toc, r, title):
    "Page written in place of a chapter that failed to render (so the other pages' links still lead somewhere)."
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>{_NAV_CSS}</head>'
            f'<body>{nav_html(site_title, toc, r["html"])}<main><h1>{html.escape(title)}</h1>'
            f'<p class="il-render-error">This chapter could not be rendered from {html.escape(r["notebook"])}:</p>'
            f'<pre>{html.escape(r["error"])}</pre></main></body></html>')

def index_page(site_title, toc, summaries):
    "A plain `index.html` listing the chapters (used when there is no index.ipynb)."
    items, sec = [], object()
    for s, href, title in toc:
        if s != sec and s: items.append(f'<h2>{html.escape(s)}</h2>')
        sec = s
        items.append(f'<p><a href="{href}">{html.escape(title)}</a> &mdash; {html.escape(summaries.get(href, ""))}</p>')
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(site_title)}</title>{_NAV_CSS}'
            f'</head><body>{nav_html(site_title, toc, "index.html")}<main><h1>{html.escape(site_title)}</h1>'
            + ''.join(items) + '</main></body></html>')

# ---------------------------------------------------------------------------------------------- chromium
def find_chromium():
    "Path of a Chromium/Chrome binary, or None (env `CHROMIUM`, when set, is the only candidate)."
    cands = [os.environ['CHROMIUM']] if os.environ.get('CHROMIUM') else ['/usr/bin/chromium', 'chromium', 'chromium-browser',
                                                                          'google-chrome']
    for c in cands:
        if c and shutil.which(c): return shutil.which(c)
    return None

def chromium(url, *extra, timeout=60, binary=None):
    "Run headless Chromium on `url` with a throwaway profile; returns the CompletedProcess (stdout = text)."
    binary = binary or find_chromium()
    if not binary: raise FileNotFoundError('Chromium not found: apt-get install -y chromium')
    with tempfile.TemporaryDirectory(prefix='il-chromium-') as prof:
        cmd = [binary, *CHROMIUM_FLAGS, f'--user-data-dir={prof}', *extra, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

def screenshot(page, png, size='1280,2000', timeout=60):
    "Screenshot a rendered page (file path or URL) to `png`."
    url = page if re.match(r'^\w+://', str(page)) else Path(page).resolve().as_uri()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    r = chromium(url, f'--screenshot={Path(png).resolve()}', f'--window-size={size}', '--virtual-time-budget=5000',
                 timeout=timeout)
    if not Path(png).exists(): raise RuntimeError(f'no screenshot for {page}: {r.stderr[-500:]}')
    return png

# ---------------------------------------------------------------------------------------------- main
def render_site(nbs=None, out='_html', only=None, workers=None, mathjax_url=None, strict=False, log=print):
    "Render the chapters of `nbs` into `out`; returns the manifest dict."
    nbs = Path(nbs or REPO/'nbs').resolve()
    out = Path(out).resolve(); out.mkdir(parents=True, exist_ok=True)
    found, missing = chapters(nbs)
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
    todo = [(sec, p) for sec, p in found if not only or p.name in only or p.stem in only]
    jobs = [(str(p), str(out/html_name(p.name)), site_title, toc, mathjax_url) for _, p in todo]
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
    manifest = dict(site_title=site_title, nbs=str(nbs), chapters=results, missing=missing,
                    seconds=round(time.time() - t0, 1))
    (out/'manifest.json').write_text(json.dumps(manifest, indent=1), encoding='utf-8')
    manifest['ok'] = not any('error' in r for r in results) and not (strict and missing)
    return manifest

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--nbs', default=str(REPO/'nbs'), help='notebook folder (default: nbs/)')
    ap.add_argument('--out', default='_html', help='output folder (default: _html/)')
    ap.add_argument('--only', nargs='*', help='render only these notebooks (file names or stems)')
    ap.add_argument('--workers', type=int, default=None, help='processes (default: number of CPUs)')
    ap.add_argument('--mathjax-url', default=None, help='MathJax URL (default: nbconvert\'s CDN)')
    ap.add_argument('--screenshots', default=None, metavar='DIR', help='also write one PNG per chapter into DIR')
    ap.add_argument('--window-size', default='1280,2000', help='screenshot size (default 1280,2000)')
    ap.add_argument('--strict', action='store_true', help='fail when sidebar.yml lists a missing notebook')
    a = ap.parse_args(argv)
    m = render_site(a.nbs, a.out, a.only, a.workers, a.mathjax_url, a.strict)
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
