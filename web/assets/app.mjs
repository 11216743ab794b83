// The single-page shell: one document for /, /watch, /calendar and /status.
// Views switch with history.pushState; every URL is relative, so the page
// also works behind a reverse proxy under a path prefix.

const VIEWS = {
  watch: ['Watch', () => import('./watch.mjs')],
  calendar: ['Schedule', () => import('./calendar.mjs')],
  status: ['Status', () => import('./status.mjs')],
};

const main = document.getElementById('view');
let current = null; // {name, unmount}
let generation = 0;
let lastWatch = ''; // the watch view's query when it was left, restored by the nav's Watch link

/** The view of a URL: its last path segment ('' and 'watch' are the watch view). */
function viewOf(url) {
  const segment = url.pathname.split('/').pop();
  return Object.hasOwn(VIEWS, segment) ? segment : 'watch';
}

async function render(focus) {
  const url = new URL(location.href);
  const name = viewOf(url);
  const mine = ++generation;
  if (current) current.unmount();
  current = null;
  for (const link of document.querySelectorAll('nav a[data-nav]')) {
    if (link.dataset.nav === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  main.dataset.view = name;
  document.title = `${VIEWS[name][0]} · f1-stream`;
  let module;
  try {
    module = await VIEWS[name][1]();
  } catch (error) {
    // Logged as an error, so a broken module cannot pass for an empty page.
    console.error(`cannot load the ${name} view:`, error);
    module = null;
  }
  if (mine !== generation) return;
  main.replaceChildren();
  if (!module) {
    main.append(Object.assign(document.createElement('p'), {
      className: 'empty', textContent: 'This page could not be loaded. Check the connection and reload.',
    }));
    return;
  }
  current = { name, ...module.mount(main, url) };
  if (focus) (main.querySelector('h1') || main).focus();
}

function navigate(href) {
  if (current && current.name === 'watch') lastWatch = location.search;
  history.pushState(null, '', href);
  render(true);
}

document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href]');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey
    || event.altKey || link.target || link.hasAttribute('download')) return;
  const url = new URL(link.href);
  const base = new URL('.', document.baseURI);
  const rest = url.pathname.slice(base.pathname.length);
  // Only the page's own views; docs, openapi.json and playlists load normally.
  if (url.origin !== location.origin || !url.pathname.startsWith(base.pathname)
    || (rest !== '' && !Object.hasOwn(VIEWS, rest))) return;
  event.preventDefault();
  const name = viewOf(url);
  if (current && current.name === name && !url.search) return; // already there: keep its state
  navigate(link.dataset.nav === 'watch' && lastWatch ? `watch${lastWatch}` : url.href);
});

window.addEventListener('popstate', () => render(true));

render(false);
