'use strict';
// Shaped like XiaShar/imparty uniCloud-aliyun/cloudfunctions/doUniPush/index.js: the push
// manager made once at load time with the app's appId, the event's cid (the original's
// field name, typo included), the answer returned as it is.
const uniPush = uniCloud.getPushManager({appId: "__UNI__DESKTOP"}) // the client app's appId (the daemon's --appid)
exports.main = async (event, context) => {
	return await uniPush.sendMessage({
		"push_clientid": event.pushCliendId, 	// the push_clientid the uni-app client got
		"title": "通知栏显示的标题",
		"content": "通知栏显示的内容",
		"payload": {
			"text": "体验一下uni-push2.0"
		}
	})
};
