// A value with subscribers: the language and the session are app-wide and
// every view re-renders when either changes.
import { useEffect, useState } from 'preact/hooks';

export function signal(initial) {
  let value = initial;
  const subs = new Set();
  return {
    get value() {
      return value;
    },
    set value(v) {
      if (v === value) return;
      value = v;
      for (const f of subs) f(v);
    },
    subscribe(f) {
      subs.add(f);
      return () => subs.delete(f);
    },
  };
}

export function useSignal(sig) {
  const [, set] = useState(sig.value);
  useEffect(() => sig.subscribe(set), [sig]);
  return sig.value;
}
