() => {
  // Citations: a click, tap or Enter on [n] (or on a source's title) in the chat opens that
  // source in the viewer. The link's target "#nr-cite-T-N" goes to a hidden box and a hidden
  // button asks the server for the article (capture phase: the chat's own click handler, which
  // selects the message, never sees it).
  const openCitation = (target) => {
    const box = document.querySelector('#nr-cite-target textarea, #nr-cite-target input');
    const btn = document.querySelector('#nr-cite-open');
    if (!box || !btn) return;
    box.value = target;
    box.dispatchEvent(new Event('input', { bubbles: true }));
    setTimeout(() => btn.click(), 0);
  };
  document.addEventListener('click', (e) => {
    const a = e.target && e.target.closest ? e.target.closest('a[href^="#nr-cite-"]') : null;
    if (!a) return;
    e.preventDefault();
    e.stopPropagation();
    openCitation(a.getAttribute('href').slice('#nr-cite-'.length));
  }, true);

  // Esc closes the source viewer.
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    if (!document.querySelector('#nr-article .nr-article-body')) return;
    const close = document.querySelector('#nr-close-source');
    if (close) close.click();
  });

  // On a phone the viewer sits below the chat: closing it goes back to the conversation.
  document.addEventListener('click', (e) => {
    if (!e.target.closest || !e.target.closest('#nr-close-source') || window.innerWidth >= 800) return;
    const chat = document.querySelector('#nr-chat');
    if (chat) chat.scrollIntoView({ block: 'start', behavior: 'instant' });
  });

  // Screen readers: a message's label is its text, not its HTML (the chat labels each message
  // with its raw content; relabel shortly after every change).
  const relabel = () => {
    document.querySelectorAll('#nr-chat [aria-label]').forEach((el) => {
      const v = el.getAttribute('aria-label') || '';
      if (!/^(user|bot)'s message|^(Question|Answer):/.test(v)) return;
      const who = v.startsWith('bot') || v.startsWith('Answer') ? 'Answer' : 'Question';
      const text = (el.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 400);
      const label = `${who}: ${text}`;
      if (v !== label) el.setAttribute('aria-label', label);
    });
  };
  let pending = null;
  new MutationObserver(() => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; relabel(); }, 60);
  }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true,
                              attributeFilter: ['aria-label'] });
}
