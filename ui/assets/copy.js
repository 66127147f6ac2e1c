(text) => {
  if (!text) return;
  const done = () => {
    const b = document.querySelector('#nr-copy');
    if (!b) return;
    const old = b.textContent;
    b.textContent = 'Copied ✓';
    setTimeout(() => { b.textContent = old; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done);
  } else {  // plain http on another host: the old way
    const ta = document.createElement('textarea');
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    document.execCommand('copy');
    ta.remove();
    done();
  }
}
