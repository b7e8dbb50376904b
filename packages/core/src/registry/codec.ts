import { BinaryReader, BinaryWriter } from "cosmjs-types/binary";

/** Field kinds the registry's protobuf messages use. */
type FieldKind = "string" | "int64" | "uint32" | "bool" | "repeatedString";

type FieldValue<K extends FieldKind> = K extends "string"
  ? string
  : K extends "int64"
    ? bigint
    : K extends "uint32"
      ? number
      : K extends "bool"
        ? boolean
        : string[];

type Schema = Record<string, readonly [number, FieldKind]>;
export type MessageOf<S extends Schema> = { -readonly [K in keyof S]: FieldValue<S[K][1]> };

/** The shape CosmJS's `Registry` expects of a generated protobuf type. */
export interface MessageCodec<T> {
  readonly typeUrl: string;
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
  decode(input: Uint8Array | BinaryReader, length?: number): T;
  fromPartial(object: Partial<T>): T;
}

const WIRE_VARINT = 0;
const WIRE_LENGTH = 2;

function defaultOf(kind: FieldKind): unknown {
  switch (kind) {
    case "string":
      return "";
    case "int64":
      return 0n;
    case "uint32":
      return 0;
    case "bool":
      return false;
    case "repeatedString":
      return [];
  }
}

/**
 * A proto3 codec built from a field table, so the wire format of each message is
 * stated once (field number and kind) instead of in hand-written encode/decode pairs.
 */
export function messageCodec<S extends Schema>(typeUrl: string, schema: S): MessageCodec<MessageOf<S>> {
  const fields = Object.entries(schema).sort((a, b) => a[1][0] - b[1][0]);
  const byNumber = new Map(fields.map(([name, [no, kind]]) => [no, { name, kind }]));

  const fromPartial = (object: Partial<MessageOf<S>>): MessageOf<S> => {
    const message: Record<string, unknown> = {};
    for (const [name, [, kind]] of fields) {
      const value = (object as Record<string, unknown>)[name];
      message[name] = value === undefined || value === null ? defaultOf(kind) : kind === "int64" ? BigInt(value as bigint) : value;
    }
    return message as MessageOf<S>;
  };

  const encode = (message: MessageOf<S>, writer = BinaryWriter.create()): BinaryWriter => {
    for (const [name, [no, kind]] of fields) {
      const value = (message as Record<string, unknown>)[name];
      switch (kind) {
        case "string":
          if (value) writer.uint32((no << 3) | WIRE_LENGTH).string(value as string);
          break;
        case "int64":
          if (value) writer.uint32((no << 3) | WIRE_VARINT).int64(value as bigint);
          break;
        case "uint32":
          if (value) writer.uint32((no << 3) | WIRE_VARINT).uint32(value as number);
          break;
        case "bool":
          if (value) writer.uint32((no << 3) | WIRE_VARINT).bool(true);
          break;
        case "repeatedString":
          for (const item of (value as string[]) ?? []) writer.uint32((no << 3) | WIRE_LENGTH).string(item);
          break;
      }
    }
    return writer;
  };

  const decode = (input: Uint8Array | BinaryReader, length?: number): MessageOf<S> => {
    const reader = input instanceof BinaryReader ? input : new BinaryReader(input);
    const end = length === undefined ? reader.len : reader.pos + length;
    const message = fromPartial({});
    const target = message as Record<string, unknown>;
    while (reader.pos < end) {
      const tag = reader.uint32();
      const field = byNumber.get(tag >>> 3);
      const wire = tag & 7;
      if (!field) {
        reader.skipType(wire);
        continue;
      }
      const expectedWire = field.kind === "string" || field.kind === "repeatedString" ? WIRE_LENGTH : WIRE_VARINT;
      if (wire !== expectedWire) throw new Error(`field ${tag >>> 3} of ${typeUrl} has wire type ${wire}`);
      switch (field.kind) {
        case "string":
          target[field.name] = reader.string();
          break;
        case "int64":
          target[field.name] = reader.int64();
          break;
        case "uint32":
          target[field.name] = reader.uint32();
          break;
        case "bool":
          target[field.name] = reader.bool();
          break;
        case "repeatedString":
          (target[field.name] as string[]).push(reader.string());
          break;
      }
    }
    if (reader.pos > end) throw new Error(`truncated ${typeUrl}`);
    return message;
  };

  return { typeUrl, encode, decode, fromPartial };
}
