/** The Redis Cluster slot of a key (CRC16 of its hash tag or whole name); the package ioredis itself uses. */
declare module 'cluster-key-slot' {
  export default function calculateSlot(key: string): number;
}
