// Runs in the browser for the article viewer: whenever its value changes, scroll the article
// box (not the page) to the highlighted span. On a narrow screen, where the viewer sits below
// the chat, the viewer itself is brought into view.
const go = () => {
  const m = element.querySelector('#cite-span');
  const box = element.querySelector('.nr-article-body');
  if (!m || !box) return;
  box.scrollTop = Math.max(0, m.offsetTop - box.clientHeight / 3);
  m.classList.remove('nr-flash'); void m.offsetWidth; m.classList.add('nr-flash');
  if (window.innerWidth < 800) {
    const head = document.querySelector('#nr-viewer') || element;
    head.scrollIntoView({ block: 'start', behavior: 'instant' });
  }
};
watch('value', () => requestAnimationFrame(go));
requestAnimationFrame(go);
