import type { Connection, Model, Schema } from 'mongoose';

/** The connection's model of that name, compiled on first use (a second repository reuses it). */
export function modelOn<T>(connection: Connection, name: string, schema: Schema<T>): Model<T> {
  return (connection.models[name] as Model<T> | undefined) ?? (connection.model<T>(name, schema) as unknown as Model<T>);
}
