/**
 * Records a member owns (batches, workflow runs), kept by id and by idempotency key: get and
 * list see only the member's own, newest first.
 */
import { seenSeq } from "./ids.ts";

/** What a member-scoped record carries. */
export interface MemberRecord {
  id: string;
  member: string;
  seq: number;
  idempotency_key?: string;
}

/**
 * One kind of member record in memory, by id and by (member, idempotency key).
 * @example
 * const runs = new MemberRecords<RunRecord>();
 * runs.add(run);
 * runs.get("alice", run.id); // undefined for any other member
 */
export class MemberRecords<R extends MemberRecord> {
  readonly #byId = new Map<string, R>();
  readonly #byKey = new Map<string, string>();

  /** Takes stored records (at start), noting their sequence numbers. */
  load(records: Iterable<R>): void {
    for (const record of records) {
      seenSeq(record.seq);
      this.add(record);
    }
  }

  add(record: R): void {
    this.#byId.set(record.id, record);
    if (record.idempotency_key !== undefined)
      this.#byKey.set(keyOf(record.member, record.idempotency_key), record.id);
  }

  remove(record: R): void {
    this.#byId.delete(record.id);
    if (record.idempotency_key !== undefined)
      this.#byKey.delete(keyOf(record.member, record.idempotency_key));
  }

  /** Forgets the records of these ids (another relay instance keeps them now). */
  release(ids: ReadonlySet<string>): void {
    for (const id of ids) {
      const record = this.#byId.get(id);
      if (record) this.remove(record);
    }
  }

  /** The record with this id, whoever owns it (internal lookups). */
  byId(id: string): R | undefined {
    return this.#byId.get(id);
  }

  /** The member's record submitted with this idempotency key, if any. */
  byKey(member: string, key: string | undefined): R | undefined {
    if (key === undefined) return undefined;
    const id = this.#byKey.get(keyOf(member, key));
    return id === undefined ? undefined : this.#byId.get(id);
  }

  /** The member's record with this id; undefined for another member's. */
  get(member: string, id: string): R | undefined {
    const record = this.#byId.get(id);
    return record?.member === member ? record : undefined;
  }

  /** The member's records, newest first. */
  list(member: string): R[] {
    return [...this.#byId.values()]
      .filter((r) => r.member === member)
      .sort((a, b) => b.seq - a.seq);
  }

  /** Every record (pruning). */
  values(): IterableIterator<R> {
    return this.#byId.values();
  }
}

const keyOf = (member: string, key: string): string => `${member}\n${key}`;
