/**
 * The scripted plugin task of the mock HAL under the names the tests have always used (it moved to
 * hal/mock/mock-plugin-tasks.ts so the mock's conformance fixture can run the lifecycle end to end).
 */
export {
  MockPluginTasks as FakePluginTasks, type MockPluginTaskOptions as FakePluginTaskOptions, type MockPluginMessage as FakeMessage,
} from '../../hal/mock/mock-plugin-tasks.js';
