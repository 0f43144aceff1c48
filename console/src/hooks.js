import { useEffect, useRef, useState } from 'preact/hooks';

// Runs `load` now and every `ms` while the view is shown (and the tab is
// visible), so new messages appear without a reload. A slow answer never
// overlaps the next poll.
export function usePoll(load, ms, deps) {
  const [state, setState] = useState({ data: null, error: null, at: null });
  const saved = useRef(load);
  saved.current = load;
  useEffect(() => {
    let stopped = false;
    let timer;
    const tick = async () => {
      if (stopped) return;
      if (document.visibilityState !== 'hidden') {
        try {
          const data = await saved.current();
          if (!stopped) setState({ data, error: null, at: new Date() });
        } catch (error) {
          if (!stopped) setState((s) => ({ ...s, error }));
        }
      }
      if (!stopped) timer = setTimeout(tick, ms);
    };
    setState({ data: null, error: null, at: null });
    tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, deps);
  const refresh = async () => {
    try {
      const data = await saved.current();
      setState({ data, error: null, at: new Date() });
    } catch (error) {
      setState((s) => ({ ...s, error }));
    }
  };
  return [state, refresh];
}

// The hash route: #/conversations/5491155551234 -> ['conversations', '5491155551234'].
export function useRoute() {
  const read = () => (location.hash.replace(/^#\/?/, '') || 'conversations').split('/').map(decodeURIComponent);
  const [route, setRoute] = useState(read());
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function go(...parts) {
  location.hash = `#/${parts.map(encodeURIComponent).join('/')}`;
}
