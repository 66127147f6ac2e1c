const go = () => {
  const m = element.querySelector('#cite-span');
  const box = element.querySelector('.nr-article-body');
  if (!m || !box) return;
  box.scrollTop = Math.max(0, m.offsetTop - box.clientHeight / 3);
  m.classList.remove('nr-flash'); void m.offsetWidth; m.classList.add('nr-flash');
  const r = element.getBoundingClientRect();
  if (r.top < 0 || r.top > window.innerHeight - 80) element.scrollIntoView({block: 'start', behavior: 'smooth'});
};
watch('value', () => requestAnimationFrame(go));
requestAnimationFrame(go);
