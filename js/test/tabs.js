'use strict';
// Tabs: several fake pages of one browser, for comet-share.js. Each tab is
// a fake browser (fakes.js) with its own clock and network; they share a
// BroadcastChannel bus and, unless made without, a Web Locks manager.
// Messages and lock grants are tasks the test runs with settle(), in
// order, as a browser runs them: never within the call that caused them.

const { browser } = require('./fakes');

class World {
  constructor() {
    this.tasks = [];
    this.channels = [];
    this.locks = new Map(); // name -> {holder, queue}
  }

  task(fn) {
    this.tasks.push(fn);
  }

  // settle runs every task, and the promise reactions they cause, until
  // none is left.
  async settle() {
    for (let i = 0; i < 1000; i++) {
      await new Promise((r) => setImmediate(r));
      if (!this.tasks.length) return;
      this.tasks.shift()();
    }
    throw new Error('the tabs never settle');
  }

  // BroadcastChannel returns a BroadcastChannel constructor for a tab.
  BroadcastChannel(tab) {
    const world = this;
    return class FakeBroadcastChannel {
      constructor(name) {
        this.name = name;
        this.tab = tab;
        world.channels.push(this);
      }

      postMessage(m) {
        if (this.closed || tab.frozen) return;
        const data = structuredClone(m);
        tab.posted.push(data);
        for (const ch of world.channels) {
          if (ch !== this && ch.name === this.name && !ch.closed) {
            world.task(() => {
              if (!ch.tab.frozen && ch.onmessage) ch.onmessage({ data: structuredClone(data) });
            });
          }
        }
      }

      close() {
        this.closed = true;
      }
    };
  }

  // lockManager returns navigator.locks for a tab: request(name, options,
  // callback) as the Web Locks API, exclusive locks only.
  lockManager(tab) {
    const world = this;
    return {
      request(name, options, cb) {
        if (typeof options === 'function') [options, cb] = [{}, options];
        const l = world.locks.get(name) || { holder: null, queue: [] };
        world.locks.set(name, l);
        return new Promise((resolve, reject) => {
          const req = { tab, cb, resolve, reject };
          if (options.steal && l.holder) {
            const old = l.holder;
            l.holder = null;
            const e = new Error('lock stolen');
            e.name = 'AbortError';
            old.reject(e);
          }
          l.queue[options.steal ? 'unshift' : 'push'](req);
          world.grant(name);
        });
      }
    };
  }

  grant(name) {
    const l = this.locks.get(name);
    if (l.holder || !l.queue.length) return;
    const req = l.queue.shift();
    l.holder = req;
    this.task(() => {
      if (l.holder !== req) return;
      Promise.resolve(req.cb({ name })).then((v) => {
        if (l.holder === req) {
          l.holder = null;
          req.resolve(v);
          this.grant(name);
        }
      });
    });
  }

  // close ends a tab: its locks go, its channels close.
  close(tab) {
    for (const ch of this.channels) if (ch.tab === tab) ch.closed = true;
    for (const [name, l] of this.locks) {
      l.queue = l.queue.filter((r) => r.tab !== tab);
      if (l.holder && l.holder.tab === tab) {
        l.holder = null;
        this.grant(name);
      }
    }
  }

  // holder returns the tab that holds the lock called name.
  holder(name) {
    const l = this.locks.get(name);
    return l && l.holder && l.holder.tab;
  }

  // tab makes a page: its fake browser, with the bus and (unless
  // noLocks) the lock manager.
  tab({ noLocks, ...env } = {}) {
    const t = { posted: [], frozen: false, world: this };
    Object.assign(t, browser(env));
    t.globals.BroadcastChannel = this.BroadcastChannel(t);
    if (!noLocks) t.globals.navigator.locks = this.lockManager(t);
    return t;
  }
}

module.exports = { World };
