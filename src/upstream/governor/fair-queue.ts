/**
 * The upstream governor's waiting room: fair across customer accounts and, inside an account,
 * across sessions. Round-robin over accounts; within the account served, round-robin over its
 * sessions; within a session, first in first out. One learner flooding cannot starve another
 * learner, and an account with many sessions cannot starve another account (it gets one turn in
 * the account rotation however many sessions it has).
 *
 * Every level is an intrusive doubly linked list, so push, shift and remove are O(1); each item is
 * mapped to its node, so an item is in the queue at most once. The serving order is only
 * materialised (O(n)) for `positionOf` and iteration.
 */

interface ItemNode<T> {
  readonly item: T;
  readonly session: SessionNode<T>;
  prev: ItemNode<T> | undefined;
  next: ItemNode<T> | undefined;
}

interface SessionNode<T> {
  readonly key: string;
  readonly account: AccountNode<T>;
  head: ItemNode<T> | undefined;
  tail: ItemNode<T> | undefined;
  size: number;
  prev: SessionNode<T> | undefined;
  next: SessionNode<T> | undefined;
}

interface AccountNode<T> {
  readonly key: string;
  /** Sessions with items, by key. */
  readonly sessions: Map<string, SessionNode<T>>;
  /** Session rotation: the head is served next. */
  head: SessionNode<T> | undefined;
  tail: SessionNode<T> | undefined;
  prev: AccountNode<T> | undefined;
  next: AccountNode<T> | undefined;
}

/** A doubly linked list's ends, for the three levels' shared link helpers. */
interface Ends<N> {
  head: N | undefined;
  tail: N | undefined;
}
interface Linked<N> {
  prev: N | undefined;
  next: N | undefined;
}

function linkTail<N extends Linked<N>>(list: Ends<N>, node: N): void {
  node.prev = list.tail;
  node.next = undefined;
  if (list.tail) list.tail.next = node;
  else list.head = node;
  list.tail = node;
}

function linkHead<N extends Linked<N>>(list: Ends<N>, node: N): void {
  node.next = list.head;
  node.prev = undefined;
  if (list.head) list.head.prev = node;
  else list.tail = node;
  list.head = node;
}

function unlink<N extends Linked<N>>(list: Ends<N>, node: N): void {
  if (node.prev) node.prev.next = node.next;
  else list.head = node.next;
  if (node.next) node.next.prev = node.prev;
  else list.tail = node.prev;
  node.prev = undefined;
  node.next = undefined;
}

/** Fair queue: round-robin over accounts, then over sessions of the account, FIFO in a session. */
export class FairQueue<T> {
  private readonly accounts = new Map<string, AccountNode<T>>();
  /** Account rotation: the head is served next. */
  private readonly rotation: Ends<AccountNode<T>> = { head: undefined, tail: undefined };
  private readonly nodes = new Map<T, ItemNode<T>>();

  /** Items waiting. */
  get size(): number {
    return this.nodes.size;
  }

  /** Whether `item` is waiting. */
  has(item: T): boolean {
    return this.nodes.has(item);
  }

  /**
   * Appends `item` to its session's FIFO. A session new to the queue joins the end of its account's
   * session rotation, an account new to the queue the end of the account rotation.
   * Throws if `item` is already queued.
   */
  push(item: T, accountKey: string, sessionKey: string): void {
    const session = this.sessionFor(accountKey, sessionKey, false);
    const node = this.newNode(item, session);
    linkTail(session, node);
    session.size++;
  }

  /**
   * Puts `item` first: at the head of its session, its session at the head of its account's
   * rotation and its account at the head of the account rotation, so the next `shift()` returns it.
   * For a retried job, which keeps the place it had when it was taken. Throws if already queued.
   */
  pushFront(item: T, accountKey: string, sessionKey: string): void {
    const session = this.sessionFor(accountKey, sessionKey, true);
    const node = this.newNode(item, session);
    linkHead(session, node);
    session.size++;
  }

  /** The item `shift()` would return, without removing it. */
  peek(): T | undefined {
    return this.rotation.head?.head?.head?.item;
  }

  /** Removes and returns the next item in fair order; its session and account go to the end of their rotations. */
  shift(): T | undefined {
    const account = this.rotation.head;
    const session = account?.head;
    const node = session?.head;
    if (!account || !session || !node) return undefined;
    this.unlinkItem(node);
    // Served: whatever is left of the session and account waits for its next turn.
    if (session.size > 0 && account.tail !== session) {
      unlink(account, session);
      linkTail(account, session);
    }
    if (account.head && this.rotation.tail !== account) {
      unlink(this.rotation, account);
      linkTail(this.rotation, account);
    }
    return node.item;
  }

  /** Removes `item` wherever it waits, in O(1); returns whether it was queued. Rotations keep their order. */
  remove(item: T): boolean {
    const node = this.nodes.get(item);
    if (!node) return false;
    this.unlinkItem(node);
    return true;
  }

  /** Removes every item of the session (under any account) and returns them in FIFO order. */
  removeSession(sessionKey: string): T[] {
    const removed: T[] = [];
    for (const account of [...this.accounts.values()]) {
      const session = account.sessions.get(sessionKey);
      if (!session) continue;
      while (session.head) {
        removed.push(session.head.item);
        this.unlinkItem(session.head);
      }
    }
    return removed;
  }

  /** 1-based place of `item` in the order the queue would serve it (simulates the rotations; O(n)). */
  positionOf(item: T): number | undefined {
    if (!this.nodes.has(item)) return undefined;
    let position = 0;
    for (const queued of this) {
      position++;
      if (queued === item) return position;
    }
    return undefined;
  }

  /** Removes everything and returns it in serving order. */
  clear(): T[] {
    const all = [...this];
    this.accounts.clear();
    this.nodes.clear();
    this.rotation.head = undefined;
    this.rotation.tail = undefined;
    return all;
  }

  /** Iterates the items in the order `shift()` would return them, without changing the queue (O(n)). */
  *[Symbol.iterator](): IterableIterator<T> {
    // Simulates shift() on a snapshot: each rotation is a work queue (array + read index) of cursors
    // into the live lists; a served entry that still has items goes to the back, as in shift().
    type Cursor = { node: ItemNode<T> | undefined };
    type AccountWork = { sessions: Cursor[]; at: number };
    const accounts: AccountWork[] = [];
    for (let a = this.rotation.head; a; a = a.next) {
      const sessions: Cursor[] = [];
      for (let s = a.head; s; s = s.next) sessions.push({ node: s.head });
      accounts.push({ sessions, at: 0 });
    }
    for (let ai = 0; ai < accounts.length; ai++) {
      const account = accounts[ai] as AccountWork;
      const cursor = account.sessions[account.at++] as Cursor;
      const node = cursor.node as ItemNode<T>;
      cursor.node = node.next;
      if (cursor.node) account.sessions.push(cursor);
      if (account.at < account.sessions.length) accounts.push(account);
      yield node.item;
    }
  }

  private newNode(item: T, session: SessionNode<T>): ItemNode<T> {
    if (this.nodes.has(item)) throw new Error('FairQueue: item is already queued');
    const node: ItemNode<T> = { item, session, prev: undefined, next: undefined };
    this.nodes.set(item, node);
    return node;
  }

  /** The session's node, created (and its account's) if needed; `front` puts both first in their rotations. */
  private sessionFor(accountKey: string, sessionKey: string, front: boolean): SessionNode<T> {
    let account = this.accounts.get(accountKey);
    if (!account) {
      account = { key: accountKey, sessions: new Map(), head: undefined, tail: undefined, prev: undefined, next: undefined };
      this.accounts.set(accountKey, account);
      if (front) linkHead(this.rotation, account);
      else linkTail(this.rotation, account);
    } else if (front && this.rotation.head !== account) {
      unlink(this.rotation, account);
      linkHead(this.rotation, account);
    }
    let session = account.sessions.get(sessionKey);
    if (!session) {
      session = { key: sessionKey, account, head: undefined, tail: undefined, size: 0, prev: undefined, next: undefined };
      account.sessions.set(sessionKey, session);
      if (front) linkHead(account, session);
      else linkTail(account, session);
    } else if (front && account.head !== session) {
      unlink(account, session);
      linkHead(account, session);
    }
    return session;
  }

  /** Unlinks an item; a session or account left empty leaves its rotation. */
  private unlinkItem(node: ItemNode<T>): void {
    const session = node.session;
    unlink(session, node);
    session.size--;
    this.nodes.delete(node.item);
    if (session.size > 0) return;
    const account = session.account;
    unlink(account, session);
    account.sessions.delete(session.key);
    if (account.head) return;
    unlink(this.rotation, account);
    this.accounts.delete(account.key);
  }
}
