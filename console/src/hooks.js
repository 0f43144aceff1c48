import { useEffect, useRef, useState } from 'preact/hooks';

const CHANGED = 'charla:changed';

// Tells every poll on the page to load again (after an action succeeded).
export function changed() {
  dispatchEvent(new Event(CHANGED));
}

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
    // One load at a time: a change during a load asks for another after it.
    let running = false;
    let again = false;
    const tick = async () => {
      if (stopped) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      clearTimeout(timer);
      if (document.visibilityState !== 'hidden') {
        try {
          const data = await saved.current();
          if (!stopped) setState({ data, error: null, at: new Date() });
        } catch (error) {
          if (!stopped) setState((s) => ({ ...s, error }));
        }
      }
      running = false;
      if (stopped) return;
      if (again) {
        again = false;
        tick();
      } else {
        timer = setTimeout(tick, ms);
      }
    };
    // Something changed here (an action): load again now, not at the next
    // tick, so every view shows the new state at once.
    const now = () => tick();
    setState({ data: null, error: null, at: null });
    tick();
    const shown = () => document.visibilityState === 'visible' && now();
    addEventListener(CHANGED, now);
    document.addEventListener('visibilitychange', shown);
    return () => {
      stopped = true;
      clearTimeout(timer);
      removeEventListener(CHANGED, now);
      document.removeEventListener('visibilitychange', shown);
    };
  }, deps);
  return [state];
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
