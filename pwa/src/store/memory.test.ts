import { describeStoreContract } from "./contract";
import { MemoryStore } from "./memory";

describeStoreContract("MemoryStore", {
  create: async () => new MemoryStore(),
  reopen: async (store) => {
    store.close();
    return new MemoryStore((store as MemoryStore).data);
  },
});
