import "fake-indexeddb/auto";
import { describeStoreContract } from "./contract";
import { IdbStore } from "./idb";

let n = 0;
const names = new WeakMap<object, string>();

describeStoreContract("IdbStore (fake-indexeddb)", {
  create: async () => {
    n += 1;
    const name = `syncpipe-test-${n}`;
    const store = await IdbStore.open(name);
    names.set(store, name);
    return store;
  },
  reopen: async (store) => {
    const name = names.get(store) as string;
    store.close();
    const again = await IdbStore.open(name);
    names.set(again, name);
    return again;
  },
});
