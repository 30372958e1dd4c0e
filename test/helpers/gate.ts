/** A gate a test opens: scripted upstreams and fake providers wait on it to hold an answer. */
export interface Gate {
  /** Resolves once the gate is open (at once if it already is). */
  readonly wait: Promise<void>;
  readonly isOpen: boolean;
  open(): void;
}

export function gate(): Gate {
  let release!: () => void;
  let isOpen = false;
  const wait = new Promise<void>((r) => (release = r));
  return {
    wait,
    get isOpen() {
      return isOpen;
    },
    open() {
      isOpen = true;
      release();
    },
  };
}
