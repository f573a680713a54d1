/**
 * The durable server of the PostgreSQL cluster example: one instance per shop (its tuid is
 * ['orders', shop]), whose state lives in PostgreSQL. Any worker process may handle any message.
 */
import 'reflect-metadata';
import { DurableServer, Init, OnCall, OnCast, noreply, ok, reply } from '../src';

export interface OrdersState {
  shop: string;
  /** Order ids in the order they were handled. */
  received: number[];
  /** How many orders each worker process handled (the worker's name is part of the commit). */
  handledBy: Record<string, number>;
}

export type Order = { type: 'order'; id: number };

/** The name of this process (each worker sets its own). */
export const me = { name: 'client' };

@DurableServer({ name: 'example-orders' })
export class Orders {
  @Init() init(arg: { shop: string }) {
    return ok<OrdersState>({ shop: arg.shop, received: [], handledBy: {} }, ['orders', arg.shop]);
  }

  @OnCast('order') order(m: Order, s: OrdersState) {
    return noreply<OrdersState>({
      ...s,
      received: [...s.received, m.id],
      handledBy: { ...s.handledBy, [me.name]: (s.handledBy[me.name] ?? 0) + 1 },
    });
  }

  /** A call: the reply comes from whichever worker handles it, after its commit. */
  @OnCall('summary') summary(_m: unknown, _from: unknown, s: OrdersState) {
    return reply({ shop: s.shop, orders: s.received.length, answeredBy: me.name }, s);
  }
}
